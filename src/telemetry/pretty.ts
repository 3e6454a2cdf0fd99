import { STATUS_CODES } from 'node:http';

/**
 * The terminal's view of the log (`--log-format pretty`): one record a line, as uvicorn prints its own
 * (`INFO:     message`), the worker as `[slot:pid]` after the level, the access records as uvicorn's
 * access log plus the duration, and a traceback as Python prints it, once. The JSON records are not
 * changed: this only decides what a person reads.
 */

export interface PrettyOptions {
  /** ANSI colours, as uvicorn's: for a terminal. */
  colorize: boolean;
  /** Records with this pid and no worker are the master's own: they get no `[slot:pid]`. */
  masterPid?: number;
}

/** Fields shown in the line's head, or that no reader needs on a terminal. */
const HEAD_FIELDS = new Set(['level', 'time', 'msg', 'name', 'pid', 'worker', 'hostname', 'v', 'stream']);
/** The access record's fields, all shown in uvicorn's access line (or not needed there). */
const ACCESS_FIELDS = new Set([...HEAD_FIELDS, 'method', 'path', 'status', 'duration', 'client', 'size', 'http_version']);

/** uvicorn's level names and colours; a pino level between two takes the lower's. */
const LEVELS: readonly { value: number; name: string; colour: string }[] = [
  { value: 60, name: 'CRITICAL', colour: '\x1b[91m' },
  { value: 50, name: 'ERROR', colour: '\x1b[31m' },
  { value: 40, name: 'WARNING', colour: '\x1b[33m' },
  { value: 30, name: 'INFO', colour: '\x1b[32m' },
  { value: 20, name: 'DEBUG', colour: '\x1b[36m' },
  { value: 0, name: 'TRACE', colour: '\x1b[34m' },
];

const RESET = '\x1b[0m';
const BOLD = '\x1b[1m';
const DIM = '\x1b[2m';

/**
 * How long a printed error stays in memory: the records that repeat it (the master's about the same
 * worker, the same traceback from the reload's other new workers) follow within milliseconds; after
 * this, when it may have scrolled away, it is printed again.
 */
const REMEMBER_MS = 5000;
/** At most this many printed texts are remembered, however many errors come at once. */
const REMEMBERED = 256;
/** Shorter strings are too likely to occur by chance to be taken for a repeat. */
const MIN_REPEAT_LENGTH = 4;

type Fields = Record<string, unknown>;

/** An error message or traceback printed (or pointed to) for a process. */
interface Printed {
  /** The process: its pid, or the tag when there is none. */
  key: string;
  tag: string;
  msg: string;
  text: string;
  time: number;
}

/**
 * Returns the formatter for one sink: a record line (without its newline) in, the text to write out.
 * It remembers the error texts and tracebacks it printed a moment ago, so a record that repeats them
 * (the master's "reload failed" with the worker's traceback) prints only what is new, and the same
 * traceback from another worker points to the first.
 */
export function createPrettyFormatter(options: PrettyOptions): (line: string) => string {
  const paint = (code: string, text: string) => (options.colorize ? `${code}${text}${RESET}` : text);
  const masterPid = options.masterPid ?? process.pid;
  let printed: Printed[] = [];

  const remember = (entry: Printed) => {
    printed.push(entry);
    if (printed.length > REMEMBERED) printed.shift();
  };
  const printedWith = (text: string) => printed.filter((entry) => entry.text.includes(text));
  const pointer = (what: string, entry: Printed, key: string) =>
    `  ${paint(DIM, entry.key === key ? `(${what} as above)` : `(${what} as for ${entry.tag || 'corral'} above)`)}`;

  return (line: string): string => {
    let record: Fields;
    try {
      const parsed: unknown = JSON.parse(line);
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return `${line}\n`;
      record = parsed as Fields;
    } catch {
      return `${line}\n`;
    }
    const level = typeof record.level === 'number' ? record.level : 30;
    const time = typeof record.time === 'number' ? record.time : Date.now();
    const tag = tagOf(record, masterPid);
    const key = typeof record.pid === 'number' ? String(record.pid) : tag;
    const msg = typeof record.msg === 'string' ? record.msg : record.msg === undefined ? '' : String(record.msg);
    const levelInfo = LEVELS.find((entry) => level >= entry.value)!;
    // uvicorn's "%(levelprefix)s %(message)s": the name and a colon, padded to ten columns.
    let head = `${paint(levelInfo.colour, `${levelInfo.name}:`)}${' '.repeat(Math.max(1, 9 - levelInfo.name.length))}`;
    if (tag) head += `${paint(DIM, tag)} `;
    if (printed.length > 0 && time - printed[0]!.time > REMEMBER_MS) printed = printed.filter((entry) => time - entry.time <= REMEMBER_MS);

    if (record.name === 'corral.access') {
      const access = accessLine(record, paint);
      if (access) return `${head}${access}${fieldsText(record, ACCESS_FIELDS, paint)}\n`;
    }

    const [first = '', ...rest] = msg.split('\n');
    const name = typeof record.name === 'string' && !/^(uvicorn|corral)(\.|$)/.test(record.name) ? `${record.name}: ` : '';
    const blocks: string[] = [];
    let notes = '';
    const body = rest.join('\n').trimEnd();
    if (body) {
      // A message with a traceback (a worker's boot error): printed in full, unless the same was
      // printed a moment ago (every new worker of a reload hits the same SyntaxError).
      const earlier = printedWith(body.trim())[0];
      if (earlier) notes += pointer('traceback', earlier, key);
      else blocks.push(body);
    }
    if (level >= 40 || body) remember({ key, tag, msg, text: msg.trim(), time });

    // A field that repeats what was printed for this process (the master's records about a worker's
    // boot error) is left out; the JSON record keeps it.
    const repeated = (text: string) =>
      text.length >= MIN_REPEAT_LENGTH && (msg.includes(text) || printedWith(text).some((entry) => entry.key === key));
    const omitted = new Set<string>();
    for (const [field, value] of Object.entries(record)) {
      if (HEAD_FIELDS.has(field)) continue;
      const block = blockOf(value);
      if (block !== undefined) {
        const text = block.trim();
        const earlier = printedWith(text);
        omitted.add(field);
        if (earlier.some((entry) => entry.key === key && entry.msg !== msg) || msg.includes(text)) continue;
        if (earlier[0]) notes += pointer(field === 'err' ? 'traceback' : field, earlier[0], key);
        else blocks.push(block.trimEnd());
        remember({ key, tag, msg, text, time });
      } else if (isRepeat(value, repeated)) {
        omitted.add(field);
      }
    }
    // A file already shown (in a traceback) takes its line number along.
    if (omitted.has('file')) omitted.add('line');
    const tail = fieldsText(record, new Set([...HEAD_FIELDS, ...omitted]), paint);
    const text = `${head}${name}${first}${tail}${notes}`;
    return blocks.length > 0 ? `${text}\n${blocks.join('\n')}\n` : `${text}\n`;
  };
}

/** The fields not shown otherwise, `key=value`, dimmed after two spaces; empty when there are none. */
function fieldsText(record: Fields, skip: ReadonlySet<string>, paint: (code: string, text: string) => string): string {
  const fields: string[] = [];
  for (const [field, value] of Object.entries(record)) {
    if (skip.has(field) || value === null || value === undefined || value === '' || (Array.isArray(value) && value.length === 0)) continue;
    fields.push(`${field}=${valueText(value)}`);
  }
  return fields.length > 0 ? `  ${paint(DIM, fields.join(' '))}` : '';
}

/** `[slot:pid]` for a worker, `[pid]` for another process of the master's (a standby), nothing for the master. */
function tagOf(record: Fields, masterPid: number): string {
  const worker = typeof record.worker === 'number' ? record.worker : undefined;
  // A record about a slot with no process yet ("scaling up") carries the master's pid, not the worker's.
  const pid = typeof record.pid === 'number' && record.pid !== masterPid ? record.pid : undefined;
  if (worker !== undefined) return pid !== undefined ? `[${worker}:${pid}]` : `[${worker}]`;
  return pid !== undefined ? `[${pid}]` : '';
}

/** uvicorn's access line, `127.0.0.1:5000 - "GET / HTTP/1.1" 200 OK`, and the duration; undefined if a field is missing. */
function accessLine(record: Fields, paint: (code: string, text: string) => string): string | undefined {
  const { method, path, status, client, duration } = record;
  if (typeof method !== 'string' || typeof path !== 'string' || typeof status !== 'number') return undefined;
  const version = typeof record.http_version === 'string' ? record.http_version : '1.1';
  const phrase = STATUS_CODES[status];
  const statusText = paint(statusColour(status), phrase ? `${status} ${phrase}` : String(status));
  const took = typeof duration === 'number' ? ` ${duration}ms` : '';
  return `${typeof client === 'string' ? client : '-'} - ${paint(BOLD, `"${method} ${path} HTTP/${version}"`)} ${statusText}${took}`;
}

/** uvicorn's colours for a status: 1xx white, 2xx green, 3xx yellow, 4xx red, 5xx bright red. */
function statusColour(status: number): string {
  if (status < 200) return '\x1b[97m';
  if (status < 300) return '\x1b[32m';
  if (status < 400) return '\x1b[33m';
  if (status < 500) return '\x1b[31m';
  return '\x1b[91m';
}

/** What is printed below the line as it is: a text of several lines, or an error's stack. */
function blockOf(value: unknown): string | undefined {
  if (typeof value === 'string') return value.trimEnd().includes('\n') ? value : undefined;
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
    const stack = (value as Fields).stack;
    if (typeof stack === 'string' && stack.trim() !== '') return stack;
  }
  return undefined;
}

/** A string (or every string of a list) the reader has seen already: in the message, or printed for this process. */
function isRepeat(value: unknown, repeated: (text: string) => boolean): boolean {
  if (typeof value === 'string') return repeated(value.trim());
  if (Array.isArray(value) && value.length > 0) return value.every((item) => typeof item === 'string' && repeated(item.trim()));
  return false;
}

function valueText(value: unknown): string {
  if (typeof value === 'string') return /^[^\s"=]+$/.test(value) ? value : JSON.stringify(value);
  if (Array.isArray(value) && value.every((item) => typeof item === 'string' && /^[^\s",=]+$/.test(item))) return value.join(',');
  return typeof value === 'object' ? JSON.stringify(value) : String(value);
}
