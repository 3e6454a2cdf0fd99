/** A small, strict parser of the Prometheus text exposition format (version 0.0.4), for tests. */

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Family {
  name: string;
  type: 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped';
  help: string;
  samples: Sample[];
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);

/** Values as Prometheus reads them (Go's ParseFloat): special values in any case, e.g. prom-client's "Nan". */
function parseValue(text: string, line: string): number {
  const special = text.toLowerCase();
  if (special === 'nan') return NaN;
  if (/^\+?inf(inity)?$/.test(special)) return Infinity;
  if (/^-inf(inity)?$/.test(special)) return -Infinity;
  const value = Number(text);
  if (text === '' || Number.isNaN(value)) throw new Error(`bad sample value ${JSON.stringify(text)} in: ${line}`);
  return value;
}

/** Parses `{a="x",b="y\"z"}` starting at `start`; returns the labels and the index after `}`. */
function parseLabels(line: string, start: number): { labels: Record<string, string>; end: number } {
  const labels: Record<string, string> = {};
  let index = start + 1;
  for (;;) {
    while (line[index] === ' ') index += 1;
    if (line[index] === '}') return { labels, end: index + 1 };
    const equals = line.indexOf('=', index);
    if (equals < 0) throw new Error(`bad labels in: ${line}`);
    const name = line.slice(index, equals).trim();
    if (!/^[a-zA-Z_][a-zA-Z0-9_]*$/.test(name)) throw new Error(`bad label name ${JSON.stringify(name)} in: ${line}`);
    if (line[equals + 1] !== '"') throw new Error(`label ${name} has no quoted value in: ${line}`);
    let value = '';
    index = equals + 2;
    for (;;) {
      const char = line[index];
      if (char === undefined) throw new Error(`unterminated label value in: ${line}`);
      if (char === '"') break;
      if (char === '\\') {
        const next = line[index + 1];
        value += next === 'n' ? '\n' : next;
        index += 2;
      } else {
        value += char;
        index += 1;
      }
    }
    if (name in labels) throw new Error(`label ${name} repeated in: ${line}`);
    labels[name] = value;
    index += 1;
    if (line[index] === ',') index += 1;
    else if (line[index] !== '}') throw new Error(`expected , or } after label ${name} in: ${line}`);
  }
}

/** Which family a sample belongs to: histograms and summaries add suffixes to the family name. */
function familyOf(sampleName: string, families: Map<string, Family>): Family | undefined {
  const direct = families.get(sampleName);
  if (direct) return direct;
  for (const suffix of ['_bucket', '_sum', '_count']) {
    if (!sampleName.endsWith(suffix)) continue;
    const family = families.get(sampleName.slice(0, -suffix.length));
    if (family && (family.type === 'histogram' || family.type === 'summary')) return family;
  }
  return undefined;
}

/** Parses a whole exposition; throws on any line it does not understand or any sample without a family. */
export function parsePrometheusText(text: string): Map<string, Family> {
  const families = new Map<string, Family>();
  const family = (name: string): Family => {
    if (!NAME.test(name)) throw new Error(`bad metric name ${JSON.stringify(name)}`);
    let found = families.get(name);
    if (!found) {
      found = { name, type: 'untyped', help: '', samples: [] };
      families.set(name, found);
    }
    return found;
  };
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    if (line.startsWith('#')) {
      const match = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line);
      if (!match) continue; // a plain comment
      const target = family(match[2]!);
      if (match[1] === 'HELP') target.help = match[3]!;
      else {
        if (!TYPES.has(match[3]!)) throw new Error(`unknown metric type in: ${line}`);
        if (target.samples.length > 0) throw new Error(`TYPE after samples in: ${line}`);
        target.type = match[3] as Family['type'];
      }
      continue;
    }
    const nameEnd = line.search(/[{ ]/);
    if (nameEnd <= 0) throw new Error(`bad sample line: ${line}`);
    const name = line.slice(0, nameEnd);
    if (!NAME.test(name)) throw new Error(`bad metric name ${JSON.stringify(name)} in: ${line}`);
    let rest = nameEnd;
    let labels: Record<string, string> = {};
    if (line[nameEnd] === '{') ({ labels, end: rest } = parseLabels(line, nameEnd));
    const fields = line.slice(rest).trim().split(/\s+/);
    if (fields.length < 1 || fields.length > 2) throw new Error(`bad sample line: ${line}`);
    const value = parseValue(fields[0]!, line);
    const owner = familyOf(name, families);
    if (!owner) throw new Error(`sample ${name} has no # TYPE/# HELP family before it`);
    owner.samples.push({ name, labels, value });
  }
  return families;
}

/** The samples named `name` (a family, or a histogram's `_bucket`/`_sum`/`_count`) with these labels. */
export function samplesOf(families: Map<string, Family>, name: string, labels: Record<string, string> = {}): Sample[] {
  const family = familyOf(name, families);
  if (!family) throw new Error(`no metric family for ${name}; have: ${[...families.keys()].join(', ')}`);
  return family.samples.filter(
    (sample) => sample.name === name && Object.entries(labels).every(([key, value]) => sample.labels[key] === value),
  );
}
