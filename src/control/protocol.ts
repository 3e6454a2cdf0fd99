/**
 * The control socket's protocol: one JSON object per line each way. A request names a command;
 * the reply has `ok: true` and the command's fields, or `ok: false` and an `error`.
 */
export type ControlRequest =
  | { command: 'status' }
  | { command: 'reload' }
  | { command: 'scale'; workers: number }
  | { command: 'stop'; mode: 'graceful' | 'quick' };

export type ControlReply = ({ ok: true } & Record<string, unknown>) | { ok: false; error: string };

/** Longest request line accepted; anything longer is not a corral client. */
export const MAX_REQUEST_BYTES = 64 * 1024;

const FIELDS: Record<ControlRequest['command'], readonly string[]> = {
  status: [],
  reload: [],
  scale: ['workers'],
  stop: ['mode'],
};

const COMMANDS = Object.keys(FIELDS).join(', ');

/** Validates one request line; anything unknown or malformed is refused, never half-applied. */
export function parseControlRequest(line: string): { request: ControlRequest } | { error: string } {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return { error: 'malformed request: expected one JSON object per line, e.g. {"command":"status"}' };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { error: 'malformed request: expected a JSON object, e.g. {"command":"status"}' };
  }
  const fields = value as Record<string, unknown>;
  const command = fields.command;
  if (typeof command !== 'string' || !Object.hasOwn(FIELDS, command)) {
    return { error: `unknown command ${JSON.stringify(command)}: expected one of ${COMMANDS}` };
  }
  const allowed = FIELDS[command as ControlRequest['command']];
  const unknown = Object.keys(fields).filter((key) => key !== 'command' && !allowed.includes(key));
  if (unknown.length > 0) return { error: `${command}: unknown field ${JSON.stringify(unknown[0])}` };
  switch (command) {
    case 'status':
    case 'reload':
      return { request: { command } };
    case 'scale': {
      const workers = fields.workers;
      if (typeof workers !== 'number' || !Number.isInteger(workers) || workers < 1 || workers > 10_000) {
        return { error: `scale: workers ${JSON.stringify(workers)}: expected a whole number from 1 to 10000` };
      }
      return { request: { command, workers } };
    }
    default: {
      const mode = fields.mode ?? 'graceful';
      if (mode !== 'graceful' && mode !== 'quick') {
        return { error: `stop: mode ${JSON.stringify(mode)}: expected "graceful" or "quick"` };
      }
      return { request: { command: 'stop', mode } };
    }
  }
}
