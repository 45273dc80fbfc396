'use strict';
/* Helpers shared by the security tests: the variables of `ci/stack env`, and the environment of
 * a binary started by ci/up (read from /proc through its pid file). */
const fs = require('node:fs');
const path = require('node:path');

function need(k) {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is not set: eval "$(ci/stack env)" first`);
  return v;
}

/* { env, environ } of the process ci/up started as `app`, or { skip } saying why there is none. */
function appEnviron(stateDir, app) {
  const run = path.join(stateDir, 'apps', 'run');
  let pid;
  try { pid = fs.readFileSync(path.join(run, `${app}.pid`), 'utf8').trim(); }
  catch { return { skip: `not started by ci/up (no ${run}/${app}.pid)` }; }
  let environ;
  try { environ = fs.readFileSync(`/proc/${pid}/environ`, 'utf8'); }
  catch { return { skip: `${app} (pid ${pid}) is not running` }; }
  const env = Object.fromEntries(environ.split('\0').filter(Boolean)
    .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
  return { env, environ };
}

module.exports = { need, appEnviron };
