import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CorralError, ExitCode } from '../exit-codes.js';

/** The worker entry shipped inside the package. */
export const WORKER_ENTRY = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'python', 'corral_worker.py');

/** `--python`, else the active virtualenv's interpreter, else `python3` on PATH. */
export function defaultPython(env: NodeJS.ProcessEnv): string {
  return env.VIRTUAL_ENV ? path.join(env.VIRTUAL_ENV, 'bin', 'python') : 'python3';
}

export interface PythonInfo {
  executable: string;
  python: string;
  uvicorn: string;
  /** What each socket is bound to, as getsockname says (for descriptors corral did not bind). */
  addresses: string[];
}

/** Runs the check as the workers' user, so a Python or uvicorn they cannot read fails here, once. */
export interface RunAs {
  uid: number;
  gid: number;
  user: string;
}

const NO_UVICORN = 10;

// Checks the interpreter and, in the same run, starts listening on the inherited sockets: Node cannot
// listen without accepting, and listening belongs to the socket, so it lasts after this process exits.
const PREPARE_SCRIPT = `
import json, socket, sys
from importlib.util import find_spec
# Found, not imported: importing uvicorn would add a tenth of a second to every start.
spec = find_spec("uvicorn")
if spec is None or spec.origin is None:
    print("No module named 'uvicorn'", file=sys.stderr)
    sys.exit(${NO_UVICORN})
version = "unknown"
with open(spec.origin, encoding="utf-8") as init:
    for line in init:
        if line.startswith("__version__"):
            version = line.split("=", 1)[1].strip().strip(chr(34) + chr(39))
            break
backlog, count = int(sys.argv[1]), int(sys.argv[2])
addresses = []
for fd in range(3, 3 + count):
    sock = socket.socket(fileno=fd)
    sock.listen(backlog)
    name = sock.getsockname()
    if sock.family == socket.AF_UNIX:
        addresses.append("unix:" + (name.decode(errors="replace") if isinstance(name, bytes) else name))
    elif sock.family == socket.AF_INET6:
        addresses.append("[%s]:%d" % (name[0], name[1]))
    else:
        addresses.append("%s:%d" % (name[0], name[1]))
    sock.detach()
print(json.dumps({"executable": sys.executable, "python": sys.version.split()[0], "uvicorn": version, "addresses": addresses}))
`;

/**
 * Runs the configured Python once: proves it exists and has uvicorn, and makes every socket listen
 * before the first worker starts, so connections queue in the backlog from then on.
 */
export function preparePython(python: string, fds: readonly number[], backlog: number, runAs?: RunAs): Promise<PythonInfo> {
  const asUser = runAs ? ` (as user ${runAs.user})` : '';
  return new Promise((resolve, reject) => {
    const child = spawn(python, ['-c', PREPARE_SCRIPT, String(backlog), String(fds.length)], {
      stdio: ['ignore', 'pipe', 'pipe', ...fds],
      ...(runAs ? { uid: runAs.uid, gid: runAs.gid } : {}),
    });
    let stdout = '';
    let stderr = '';
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.once('error', (error: NodeJS.ErrnoException) => {
      const why = error.code === 'ENOENT' ? 'not found' : error.code === 'EACCES' ? 'cannot be run' : error.message;
      reject(
        new CorralError(
          `Python ${JSON.stringify(python)} ${why}${asUser}: install Python 3 or pass --python /path/to/python (or activate a virtualenv)`,
          ExitCode.runtime,
        ),
      );
    });
    child.once('close', (code) => {
      if (code === 0) {
        try {
          resolve(JSON.parse(stdout.trim().split('\n').pop() ?? '') as PythonInfo);
        } catch {
          reject(new CorralError(`Python ${JSON.stringify(python)} printed an unexpected answer: ${stdout.trim()}`, ExitCode.runtime));
        }
      } else if (code === NO_UVICORN) {
        reject(
          new CorralError(
            `uvicorn is not installed for ${python}${asUser}: run ${python} -m pip install 'uvicorn[standard]'` +
              (runAs ? `, and make it readable by ${runAs.user}` : ''),
            ExitCode.runtime,
          ),
        );
      } else {
        const detail = stderr.trim().split('\n').pop() ?? `exit code ${code}`;
        reject(new CorralError(`Python ${JSON.stringify(python)}${asUser} failed to prepare the sockets: ${detail}`, ExitCode.runtime));
      }
    });
  });
}
