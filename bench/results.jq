# Assembles ci/bench's results.json from the measurements (one JSON object per run, $runs) and
# computes the ratios against the targets of the Benchmarks issue. Used by ci/bench only.
def run(n): ($runs | map(select(.name == n)) | .[0]);
def ratio(a; b): if a == null or b == null or b == 0 then null else a / b end;
# The dependency ceiling at a point: the mean of its measurements (first, and right before the
# gateway).
def ceiling_at(r; c): [run("deps-r\(r)-c\(c)").uploads_per_s, run("deps2-r\(r)-c\(c)").uploads_per_s]
  | map(select(. != null)) | if length == 0 then null else add / length end;
def r3(x): if x == null then null else (x * 1000 | round) / 1000 end;
def r1(x): if x == null then null else (x * 10 | round) / 10 end;
def concs: [$runs[] | select(.name | test("^gw-r1-c")) | .conc] | unique;
def maxc: (concs | max) // 0;
def target(name; value; unit; op; t):
  {name: name, value: r3(value), unit: unit, target: "\(op) \(t)",
   met: (if value == null then null elif op == ">=" then value >= t else value < t end)};

{
  meta: {
    command: $cmd, date: $date, tag: $tag, quick: ($quick == 1), duration_s: $secs,
    git: $git, kernel: $kernel, postgresql: $pg, cpu: $cpu, nproc: $nproc, mem_total_kb: $mem,
    load_avg_end: ($load | split(" ") | map(tonumber)),
    load_avg_start: ([$runs[] | .watch.machine.load_start // empty] | .[0]),
    failed: ($failed | split(" ") | map(select(. != ""))),
    skipped: ($skipped | split(" ") | map(select(. != ""))),
    subtitle: "\($date), \($nproc) CPUs, load average \($load | split(" ") | .[0]) at the end"
  },
  rest: $rest[0],
  runs: $runs,
  ratios: {
    gateway_vs_deps_ceiling: [
      (1, 100) as $r | concs[] as $c
      | {records: $r, conc: $c,
         gateway: r1(run("gw-r\($r)-c\($c)").uploads_per_s),
         via_nginx: r1(run("gwnginx-r\($r)-c\($c)").uploads_per_s),
         nodelay: r1(run("gwnodelay-r\($r)-c\($c)").uploads_per_s),
         ceiling: r1(ceiling_at($r; $c)),
         ceiling_first: r1(run("deps-r\($r)-c\($c)").uploads_per_s),
         ceiling_paired: r1(run("deps2-r\($r)-c\($c)").uploads_per_s),
         nginx202: r1(run("nginx202-r\($r)-c\($c)").uploads_per_s),
         baseline: r1(run("baseline-r\($r)-c\($c)").uploads_per_s),
         ratio: r3(ratio(run("gw-r\($r)-c\($c)").uploads_per_s; ceiling_at($r; $c))),
         ratio_via_nginx: r3(ratio(run("gwnginx-r\($r)-c\($c)").uploads_per_s; ceiling_at($r; $c))),
         ratio_nodelay: r3(ratio(run("gwnodelay-r\($r)-c\($c)").uploads_per_s; ceiling_at($r; $c))),
         vs_baseline: r3(ratio(run("gw-r\($r)-c\($c)").uploads_per_s; run("baseline-r\($r)-c\($c)").uploads_per_s))}
    ],
    stages: {
      broker_msgs_per_s: r1(run("broker").msgs_per_s),
      smtp_1conn_msgs_per_s: r1(run("smtp-c1").msgs_per_s),
      smtp_4conn_msgs_per_s: r1(run("smtp-c4").msgs_per_s),
      txfraud_alone_events_per_s: r1(run("fraud").events_per_s),
      txpersist_alone_rows_per_s: r1(run("persist").rows_per_s_from_first_row),
      pg_copy_rows_per_s: r1(run("pg").copy_rows_per_s),
      pg_upsert_rows_per_s: r1(run("pg").upsert_rows_per_s),
      pg_copy_upsert_rows_per_s: r1(run("pg").copy_upsert_rows_per_s)
    },
    e2e_vs_broker: {
      broker_msgs_per_s: r1(run("broker").msgs_per_s),
      emailed_records_per_s: r1(run("e2e").e2e.emailed_records_per_s),
      persisted_scored_records_per_s: r1(run("e2e").e2e.persisted_scored_records_per_s),
      ratio_emailed: r3(ratio(run("e2e").e2e.emailed_records_per_s; run("broker").msgs_per_s)),
      ratio_persisted_scored: r3(ratio(run("e2e").e2e.persisted_scored_records_per_s; run("broker").msgs_per_s)),
      baseline_records_per_s: r1(run("baseline-e2e").e2e.persisted_scored_records_per_s)
    }
  },
  targets: (
    [ (1, 100) as $r | concs[] as $c
      | target("gateway / dependency ceiling, \($r) record(s), \($c) connection(s)";
               ratio(run("gw-r\($r)-c\($c)").uploads_per_s; ceiling_at($r; $c));
               "x"; ">="; 0.8) ]
    + [ concs[] as $c
      | target("gateway / Python baseline, seed-sized upload (1 record), \($c) connection(s)";
               ratio(run("gw-r1-c\($c)").uploads_per_s; run("baseline-r1-c\($c)").uploads_per_s);
               "x"; ">="; 20) ]
    + [ target("end to end (persisted, scored, e-mailed) / broker ceiling";
               ratio(run("e2e").e2e.emailed_records_per_s; run("broker").msgs_per_s); "x"; ">="; 0.7),
        target("end to end without e-mail (persisted, scored) / broker ceiling";
               ratio(run("e2e").e2e.persisted_scored_records_per_s; run("broker").msgs_per_s); "x"; ">="; 0.7),
        target("txpersist rows/s (draining a queue)"; run("persist").rows_per_s_from_first_row;
               "rows/s"; ">="; 50000),
        target("gateway peak RSS at \(maxc) connections";
               ([$runs[] | select(.name | test("^gw(nginx)?-r[0-9]+-c\(maxc)$"))
                 | .watch.procs.gateway.rss_max_kb] | max | if . == null then null else . / 1024 end);
               "MB"; "<"; 50) ]
  ),
  plot_rows: [
    $runs[] | select(.mode == "http" or .mode == "deps")
    | (.name | capture("^(?<s>[a-z0-9]+)-r(?<r>[0-9]+)-c(?<c>[0-9]+)$")) as $m
    | select($m != null)
    | [$m.s, ($m.r | tonumber), ($m.c | tonumber), .uploads_per_s, .lat_ms.p99]
  ]
}
