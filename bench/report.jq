# Renders the tables of docs/performance.md from ci/bench's results.json:
#   jq -r -f bench/report.jq .state/bench/results.json
def run(n): (.runs | map(select(.name == n)) | .[0]);
def f0: if . == null then "-" else (. | round | tostring) end;
def f1: if . == null then "-" else ((. * 10 | round) / 10 | tostring) end;
def f2: if . == null then "-" else ((. * 100 | round) / 100 | tostring) end;
def ms: if . == null then "-" else (if . >= 100 then f0 elif . >= 10 then f1 else f2 end) end;
def mb: if . == null then "-" else ((. / 1024 * 10 | round) / 10 | tostring) end;
def load: (.watch.machine.load_end // [null])[0] | f1;
def row: "| " + join(" | ") + " |";
def concs: [.runs[] | select(.name | test("^gw-r1-c")) | .conc] | unique;
. as $R
| ($R | concs) as $C
| [
  "### Run",
  "",
  "| | |", "|---|---|",
  (["command", "`\(.meta.command | rtrimstr(" "))`"] | row),
  (["date (UTC)", .meta.date] | row),
  (["machine", "\(.meta.nproc) CPUs (\(.meta.cpu)), \(.meta.mem_total_kb / 1048576 | f1) GiB, kernel \(.meta.kernel)"] | row),
  (["load average (1, 5, 15 min) at start / end", "\(.meta.load_avg_start | map(f1) | join(", ")) / \(.meta.load_avg_end | map(f1) | join(", "))"] | row),
  (["source", .meta.git] | row),
  (if .meta.postgresql then (["PostgreSQL settings", .meta.postgresql] | row) else empty end),
  (["measurement time", "\(.meta.duration_s) s"] | row),
  (["failed / skipped steps", "\(.meta.failed | if length == 0 then "none" else join(", ") end) / \(.meta.skipped | if length == 0 then "none" else join(", ") end)"] | row),
  "",
  "### Targets",
  "",
  "| target | measured | wanted | |", "|---|---|---|---|",
  (.targets[] | [.name, "\(.value | if . == null then "-" else (if . >= 100 then f0 else f2 end) end) \(.unit)", .target,
                 (if .met == null then "not measured" elif .met then "met" else "**missed**" end)] | row),
  "",
  "### Ceilings",
  "",
  "Uploads per second (p50 / p99 latency in ms). `deps` is bench/txceiling: S3 PUT + Redis pipeline + one confirmed publish per record, in threads, no HTTP; measured first, and again right before the gateway at the same point.",
  "",
  "| records | connections | nginx `return 202` | deps ceiling, first | deps: mean S3 / Redis / publish ms | deps ceiling, before the gateway | mean of the two |", "|---|---|---|---|---|---|---|",
  (( 1, 100) as $r | $C[] as $c
   | ($R | run("nginx202-r\($r)-c\($c)")) as $n | ($R | run("deps-r\($r)-c\($c)")) as $d
   | ($R | run("deps2-r\($r)-c\($c)")) as $d2
   | ["\($r)", "\($c)", "\($n.uploads_per_s | f0) (\($n.lat_ms.p50 | ms) / \($n.lat_ms.p99 | ms))",
      "\($d.uploads_per_s | f0) (\($d.lat_ms.p50 | ms) / \($d.lat_ms.p99 | ms))",
      "\($d.steps_mean_ms.s3 | ms) / \($d.steps_mean_ms.redis | ms) / \($d.steps_mean_ms.publish | ms)",
      (if $d2 == null then "-" else "\($d2.uploads_per_s | f0) (\($d2.lat_ms.p50 | ms) / \($d2.lat_ms.p99 | ms))" end),
      ([$d.uploads_per_s, $d2.uploads_per_s] | map(select(. != null)) | if length == 0 then "-" else (add / length | f0) end)] | row),
  ( run("deps-head-r1-c16") as $d | select($d != null)
   | ["1", "16, with the gateway's S3 HEAD", "", "\($d.uploads_per_s | f0) (\($d.lat_ms.p50 | ms) / \($d.lat_ms.p99 | ms))",
      "\($d.steps_mean_ms.s3 | ms) / \($d.steps_mean_ms.redis | ms) / \($d.steps_mean_ms.publish | ms)", "", ""] | row),
  "",
  "| stage ceiling | rate | load |", "|---|---|---|",
  (run("broker") | select(. != null) | ["broker: confirmed publish + consume, \(.count) messages of \(.message_bytes) B, one quorum queue", "\(.msgs_per_s | f0) msg/s (publish alone \(.publish_msgs_per_s | f0))", load] | row),
  (run("pg") | select(. != null) | ["PostgreSQL COPY, batches of \(.batch), temporary table LIKE transactions", "\(.copy_rows_per_s | f0) rows/s", load] | row),
  (run("pg") | select(. != null) | ["PostgreSQL batched upsert (INSERT ... unnest ... ON CONFLICT), \(.batch) rows per statement", "\(.upsert_rows_per_s | f0) rows/s", load] | row),
  (run("pg") | select(. != null) | ["PostgreSQL COPY into staging + one upsert per batch (txpersist's method)", "\(.copy_upsert_rows_per_s | f0) rows/s", load] | row),
  (run("smtp-c1") | select(. != null) | ["SMTP sink (maildev), one reused connection", "\(.msgs_per_s | f0) e-mails/s (maildev \(.watch.procs.maildev.cpu_pct | f0)% CPU, \(.watch.procs.maildev.cpu_us_per_unit | f0) us CPU per e-mail)", load] | row),
  (run("smtp-c4") | select(. != null) | ["SMTP sink (maildev), four connections", "\(.msgs_per_s | f0) e-mails/s (maildev \(.watch.procs.maildev.cpu_pct | f0)% CPU, \(.watch.procs.maildev.cpu_us_per_unit | f0) us CPU per e-mail)", load] | row),
  (run("fraud") | select(. != null) | ["txfraud alone draining \(.events) events (bench/fraud_bench)", "\(.events_per_s | f0) events/s", load] | row),
  (run("persist") | select(. != null) | ["txpersist alone draining \(.rows) events (txpersist_bench), batch \(.batch)", "\(.rows_per_s_from_first_row | f0) rows/s (CPU per row: txpersist \(.cpu_us_per_row.txpersist) us, its PostgreSQL backend \(.cpu_us_per_row.postgres) us)", load] | row),
  "",
  "### Gateway",
  "",
  "Uploads per second (p50 / p99 ms); ratio = gateway / deps ceiling at the same concurrency (the mean of its two measurements). `+TCP_NODELAY` is the same binary with TCP_NODELAY forced on its accepted sockets (LD_PRELOAD).",
  "",
  "| records | connections | gateway | ratio | via nginx | ratio | +TCP_NODELAY | ratio | gateway peak RSS MB | gateway CPU us/record | load |", "|---|---|---|---|---|---|---|---|---|---|---|",
  (.ratios.gateway_vs_deps_ceiling[] as $x
   | ($R | run("gw-r\($x.records)-c\($x.conc)")) as $g | ($R | run("gwnginx-r\($x.records)-c\($x.conc)")) as $n
   | ($R | run("gwnodelay-r\($x.records)-c\($x.conc)")) as $d
   | ["\($x.records)", "\($x.conc)",
      "\($g.uploads_per_s | f0) (\($g.lat_ms.p50 | ms) / \($g.lat_ms.p99 | ms))", ($x.ratio | f2),
      "\($n.uploads_per_s | f0) (\($n.lat_ms.p50 | ms) / \($n.lat_ms.p99 | ms))", ($x.ratio_via_nginx | f2),
      (if $d == null then "-" else "\($d.uploads_per_s | f0) (\($d.lat_ms.p50 | ms) / \($d.lat_ms.p99 | ms))" end), ($x.ratio_nodelay | f2),
      ($g.watch.procs.gateway.rss_max_kb | mb), ($g.watch.procs.gateway.cpu_us_per_unit | f0), ($g | load)] | row),
  "",
  "With the shipped admission limit (`TX_MAX_INFLIGHT=32`; the rows above use 64 so that 64 connections are 64 uploads in flight, as in the ceiling):",
  "",
  "| records | connections | 202/s | 429/s | p50 / p99 ms of the 202s | gateway peak RSS MB | load |", "|---|---|---|---|---|---|---|",
  (.runs[] | select(.name | test("^gwdefault-"))
   | [ "\(.records_per_upload)", "\(.conc)", (.uploads_per_s | f0), (.non2xx / .window_s | f0),
       "\(.lat_ms.p50 | ms) / \(.lat_ms.p99 | ms)", (.watch.procs.gateway.rss_max_kb | mb), load] | row),
  "",
  "### Python baseline (the original design), same load",
  "",
  "| records | connections | baseline uploads/s (p50 / p99 ms) | gateway / baseline | gateway+TCP_NODELAY / baseline | baseline CPU % | load |", "|---|---|---|---|---|---|---|",
  (.ratios.gateway_vs_deps_ceiling[] as $x
   | ($R | run("baseline-r\($x.records)-c\($x.conc)")) as $b
   | ["\($x.records)", "\($x.conc)", "\($b.uploads_per_s | f1) (\($b.lat_ms.p50 | ms) / \($b.lat_ms.p99 | ms))",
      ($x.vs_baseline | f2), (if $x.nodelay == null or $b.uploads_per_s == null or $b.uploads_per_s == 0 then "-" else ($x.nodelay / $b.uploads_per_s | f2) end),
      ($b.watch.procs.baseline.cpu_pct | f0), ($b | load)] | row),
  "",
  "### End to end",
  "",
  "Seconds from the first POST; records/s = records / that time. Persisted and scored = every row in `transactions` with `scored_at`; e-mailed = an `emails` row for every record.",
  "",
  "| run | records | all accepted | persisted | scored | persisted + scored (records/s) | e-mailed (records/s) | max queue depth fraud / notify / persist | load |", "|---|---|---|---|---|---|---|---|---|",
  (.runs[] | select(.mode == "e2e")
   | [.name, "\(.e2e.records)", "\(.e2e.upload_s | f1) s", "\(.e2e.persisted_s | f1) s", "\(.e2e.scored_s | f1) s",
      "\(.e2e.persisted_scored_s | f1) s (\(.e2e.persisted_scored_records_per_s | f0))",
      (if (.name | startswith("baseline")) then "no e-mail" else "\(.e2e.emailed_s | f1) s (\(.e2e.emailed_records_per_s | f0))" end),
      (if (.name | startswith("baseline")) then "-" else "\(.e2e.queue_max["tx.fraud"]) / \(.e2e.queue_max["tx.notify"]) / \(.e2e.queue_max["tx.persist"])" end),
      load] | row),
  "",
  "CPU by phase (share of one core; the machine has \(.meta.nproc)): phase 1 from the first POST until every record is persisted and scored, phase 2 from then until the last e-mail row. The five busiest watched processes, then the whole machine (other users included):",
  "",
  "| run | phase 1 | phase 2 |", "|---|---|---|",
  (.runs[] | select(.mode == "e2e" and .watch.machine.phase1_s != null)
   | .watch as $w
   | def top(k): [$w.procs | to_entries[] | {n: .key, v: .value[k]}] | sort_by(-.v) | .[0:5] | map("\(.n) \(.v | f0)%") | join(", ");
     [.name, "\($w.machine.phase1_s | f1) s: \(top("cpu_pct_phase1")); machine \($w.machine.cpu_busy_pct_phase1 | f0)% busy",
      "\($w.machine.phase2_s | f1) s: \(top("cpu_pct_phase2")); machine \($w.machine.cpu_busy_pct_phase2 | f0)% busy"] | row),
  "",
  "CPU per record during the e2e run (utime + stime over the whole run / records, microseconds) and peak RSS (MB):",
  "",
  ( run("e2e") as $e | select($e != null)
   | ($e.watch.procs | keys_unsorted) as $k
   | ("| | " + ($k | join(" | ")) + " |"), ("|---|" + ($k | map("---") | join("|")) + "|"),
     ("| CPU us / record | " + ($k | map($e.watch.procs[.].cpu_us_per_unit | f0) | join(" | ")) + " |"),
     ("| CPU % of one core | " + ($k | map($e.watch.procs[.].cpu_pct | f0) | join(" | ")) + " |"),
     ("| RSS peak MB | " + ($k | map($e.watch.procs[.].rss_max_kb | mb) | join(" | ")) + " |")),
  "",
  "RSS at rest (before the first measurement), MB:",
  "",
  ("| " + (.rest | keys_unsorted | join(" | ")) + " |"), ("|" + (.rest | keys_unsorted | map("---") | join("|")) + "|"),
  ("| " + ([.rest[] | .rss_kb | mb] | join(" | ")) + " |"),
  "",
  "RSS under load: the peak over every run that watched the process, MB (`gateway` is the benchmark's own gateway instances, `nginx` the benchmark's nginx with its workers):",
  "",
  ( [.runs[] | .watch.procs // {} | to_entries[] | {n: .key, v: .value.rss_max_kb}]
    | group_by(.n) | map({n: .[0].n, v: (map(.v) | max)}) as $p
    | ("| " + ($p | map(.n) | join(" | ")) + " |"), ("|" + ($p | map("---") | join("|")) + "|"),
      ("| " + ($p | map(.v | mb) | join(" | ")) + " |"))
] | .[]
