import { UsageError } from '../exit-codes.js';

/**
 * The APP argument: uvicorn's `module:attribute` (dots allowed in the attribute), or gunicorn's
 * factory call `module:create_app('prod', debug=False)`. gunicorn parses the part after the colon
 * with `ast.parse(…, mode="eval")` and takes a bare name or a call of a bare name whose arguments
 * `ast.literal_eval` accepts; anything else is refused. This is that check, done before anything
 * starts so a bad APP is a usage error (exit 2); the worker evaluates the arguments with Python's
 * own `ast` (src/python/corral_runtime/app_target.py).
 */
export interface AppTarget {
  module: string;
  /** The attribute, or the called function's name. */
  attribute: string;
  /** Present for the call form: the arguments' source text, between the parentheses. */
  call?: { args: string };
}

const EXAMPLE = "e.g. app.main:app, or app.main:create_app('prod', debug=False)";

export function parseAppTarget(app: string): AppTarget {
  const colon = app.indexOf(':');
  const module = colon < 0 ? app : app.slice(0, colon);
  const expression = colon < 0 ? '' : app.slice(colon + 1);
  if (colon < 0 || !/^[\w.]+$/.test(module)) throw new UsageError(`APP ${JSON.stringify(app)}: expected module:attribute, ${EXAMPLE}`);
  if (/^[\w.]+$/.test(expression)) return { module, attribute: expression };
  try {
    const { name, args } = parseCall(expression, colon + 1);
    return { module, attribute: name, call: { args } };
  } catch (error) {
    if (!(error instanceof CallSyntaxError)) throw error;
    throw new UsageError(
      `APP ${JSON.stringify(app)}: ${error.message}; expected module:attribute or module:function(...) with literal arguments ` +
        `(strings, numbers, True, False, None, tuples, lists, dicts, sets) as gunicorn takes them, ${EXAMPLE}`,
    );
  }
}

class CallSyntaxError extends Error {}

/** What a literal is, as far as ast.literal_eval's rules need to know. */
type Literal = { kind: 'number'; complex: boolean; signed: boolean } | { kind: 'string'; bytes: boolean } | { kind: 'other' };

const KEYWORDS = new Set(
  'False None True and as assert async await break class continue def del elif else except finally for from global if import in is lambda nonlocal not or pass raise return try while with yield'.split(
    ' ',
  ),
);
const IDENTIFIER = /^[\p{L}_][\p{L}\p{N}_]*/u;
const DIGITPART = '[0-9](?:_?[0-9])*';
const EXPONENT = `[eE][+-]?${DIGITPART}`;
const FLOAT = `(?:(?:(?:${DIGITPART})?\\.${DIGITPART}|${DIGITPART}\\.)(?:${EXPONENT})?|${DIGITPART}${EXPONENT})`;
const IMAGINARY = new RegExp(`^(?:${FLOAT}|${DIGITPART})[jJ]`);
const REAL = new RegExp(`^(?:${FLOAT}|0[bB](?:_?[01])+|0[oO](?:_?[0-7])+|0[xX](?:_?[0-9a-fA-F])+|[1-9](?:_?[0-9])*|0(?:_?0)*)`);
const STRING_PREFIX = /^(?:[rR][bBfF]?|[bBfF][rR]?|[uU])?(?='|")/;

/** A recursive-descent reader of `name(arguments)` over Python's literal grammar. */
class CallReader {
  private position = 0;
  private depth = 0;

  /** `offset`: where the text starts in APP, so the column counts from APP's first character. */
  constructor(
    private readonly text: string,
    private readonly offset: number,
  ) {}

  fail(what: string): never {
    throw new CallSyntaxError(`${what} at column ${this.offset + this.position + 1}`);
  }

  /** Whitespace; newlines and comments only inside brackets, as in Python. */
  skipSpace(): void {
    for (;;) {
      const char = this.text[this.position];
      if (char === ' ' || char === '\t' || char === '\f') this.position++;
      else if (this.depth > 0 && (char === '\n' || char === '\r')) this.position++;
      else if (this.depth > 0 && char === '\\' && this.text[this.position + 1] === '\n') this.position += 2;
      else if (this.depth > 0 && char === '#') {
        while (this.position < this.text.length && this.text[this.position] !== '\n') this.position++;
      } else return;
    }
  }

  peek(): string {
    this.skipSpace();
    return this.text.slice(this.position, this.position + 3);
  }

  eat(token: string): boolean {
    this.skipSpace();
    if (!this.text.startsWith(token, this.position)) return false;
    this.position += token.length;
    return true;
  }

  expect(token: string, what: string): void {
    if (!this.eat(token)) this.fail(`expected ${what}`);
  }

  identifier(): string | undefined {
    this.skipSpace();
    const match = IDENTIFIER.exec(this.text.slice(this.position));
    if (!match) return undefined;
    this.position += match[0].length;
    return match[0];
  }

  readCall(): { name: string; args: string } {
    if (/^\s/.test(this.text)) this.fail('unexpected space');
    const name = this.identifier();
    if (name === undefined || KEYWORDS.has(name)) this.fail('expected the name of a function');
    if (!this.eat('(')) this.fail(this.position >= this.text.length ? 'unexpected end' : 'the part after the colon is neither an attribute nor a call of a plain name');
    this.depth++;
    const argsStart = this.position;
    let sawKeyword = false;
    while (!this.eat(')')) {
      if (this.position >= this.text.length) this.fail('unclosed (');
      const start = this.position;
      const keyword = this.identifier();
      if (keyword !== undefined && !KEYWORDS.has(keyword) && this.eat('=') && !this.text.startsWith('=', this.position)) {
        sawKeyword = true;
      } else {
        this.position = start;
        if (this.peek().startsWith('*')) this.fail('starred arguments are not literals');
        if (sawKeyword) this.fail('a positional argument follows a keyword argument');
      }
      this.literal();
      if (!this.eat(',')) {
        this.expect(')', ', or )');
        break;
      }
    }
    this.depth--;
    const argsEnd = this.position - 1;
    this.skipSpace();
    if (/^[\s]*$/.test(this.text.slice(this.position))) return { name, args: this.text.slice(argsStart, argsEnd) };
    return this.fail('unexpected text after the call');
  }

  /** One literal as ast.literal_eval takes it, with the `real ± imaginary` sum it also allows. */
  literal(): Literal {
    const first = this.unary();
    const next = this.peek();
    if ((next.startsWith('+') || next.startsWith('-')) && first.kind === 'number' && !first.complex) {
      this.position++;
      const second = this.unary();
      if (second.kind !== 'number' || !second.complex || second.signed) this.fail('only a real number plus or minus an imaginary one may be added');
      return { kind: 'number', complex: true, signed: true };
    }
    return first;
  }

  unary(): Literal {
    const next = this.peek();
    if (next.startsWith('+') || next.startsWith('-')) {
      this.position++;
      const operand = this.atom();
      if (operand.kind !== 'number' || operand.signed) this.fail('a sign applies to a number only');
      return { ...operand, signed: true };
    }
    return this.atom();
  }

  atom(): Literal {
    const next = this.peek();
    if (next === '...') {
      this.position += 3;
      return { kind: 'other' };
    }
    const char = next[0];
    if (char === '(') return this.sequence('(', ')', true);
    if (char === '[') return this.sequence('[', ']', false);
    if (char === '{') return this.braces();
    if (char !== undefined && /[0-9.]/.test(char)) return this.number();
    const rest = this.text.slice(this.position);
    if (STRING_PREFIX.test(rest)) return this.strings();
    const start = this.position;
    const name = this.identifier();
    if (name === 'True' || name === 'False' || name === 'None') return { kind: 'other' };
    if (name === 'set' && this.eat('(')) {
      this.depth++;
      this.expect(')', ') (only an empty set() is a literal)');
      this.depth--;
      return { kind: 'other' };
    }
    this.position = start;
    return this.fail(name === undefined ? (char === undefined ? 'unexpected end' : `unexpected ${JSON.stringify(char)}`) : `${name} is not a literal`);
  }

  number(): Literal {
    const rest = this.text.slice(this.position);
    const imaginary = IMAGINARY.exec(rest);
    const match = imaginary ?? REAL.exec(rest);
    if (!match) return this.fail('not a number');
    this.position += match[0].length;
    if (/^[\p{L}\p{N}_.]/u.test(this.text.slice(this.position))) this.fail('not a valid number');
    return { kind: 'number', complex: imaginary !== null, signed: false };
  }

  /** Adjacent strings concatenate, as in Python; bytes and text cannot be mixed. */
  strings(): Literal {
    let bytes: boolean | undefined;
    for (;;) {
      this.skipSpace();
      const prefix = STRING_PREFIX.exec(this.text.slice(this.position));
      if (!prefix) break;
      const letters = prefix[0].toLowerCase();
      if (letters.includes('f')) this.fail('an f-string is not a literal');
      const isBytes = letters.includes('b');
      if (bytes !== undefined && bytes !== isBytes) this.fail('bytes and text strings cannot be joined');
      bytes = isBytes;
      this.position += prefix[0].length;
      const quote = this.text.startsWith(this.text[this.position]!.repeat(3), this.position) ? this.text[this.position]!.repeat(3) : this.text[this.position]!;
      this.position += quote.length;
      const start = this.position;
      for (;;) {
        if (this.position >= this.text.length) this.fail('unterminated string');
        const char = this.text[this.position]!;
        if (char === '\\') {
          this.position += 2;
          continue;
        }
        if (quote.length === 1 && char === '\n') this.fail('unterminated string');
        if (this.text.startsWith(quote, this.position)) break;
        this.position++;
      }
      if (isBytes && /[^\x00-\x7f]/.test(this.text.slice(start, this.position))) this.fail('bytes can only contain ASCII characters');
      this.position += quote.length;
    }
    return { kind: 'string', bytes: bytes ?? false };
  }

  /** (…) is a tuple, or just grouping around one literal; […] a list. */
  sequence(open: string, close: string, parenthesis: boolean): Literal {
    this.expect(open, open);
    this.depth++;
    let count = 0;
    let comma = false;
    let only: Literal = { kind: 'other' };
    while (!this.eat(close)) {
      if (this.peek().startsWith('*')) this.fail('starred items are not literals');
      only = this.literal();
      count++;
      if (!this.eat(',')) {
        this.expect(close, `, or ${close}`);
        break;
      }
      comma = true;
    }
    this.depth--;
    return parenthesis && count === 1 && !comma ? only : { kind: 'other' };
  }

  /** {} is a dict, {a, b} a set, {k: v} a dict; keys must be hashable literals. */
  braces(): Literal {
    this.expect('{', '{');
    this.depth++;
    let isDict: boolean | undefined;
    while (!this.eat('}')) {
      if (this.peek().startsWith('*')) this.fail('unpacking is not a literal');
      const start = this.position;
      this.skipSpace();
      const keyStart = this.text[this.position];
      this.literal();
      const hashable = keyStart !== '[' && keyStart !== '{' && !(keyStart === 's' && this.text.slice(start).trim().startsWith('set('));
      const colon = this.eat(':');
      if (isDict !== undefined && isDict !== colon) this.fail('a set and a dict cannot be mixed');
      isDict = colon;
      if (!hashable) this.fail('a list, dict or set cannot be a key or a set item');
      if (colon) this.literal();
      if (!this.eat(',')) {
        this.expect('}', ', or }');
        break;
      }
    }
    this.depth--;
    return { kind: 'other' };
  }
}

function parseCall(expression: string, offset: number): { name: string; args: string } {
  if (expression === '') throw new CallSyntaxError('nothing after the colon');
  return new CallReader(expression, offset).readCall();
}
