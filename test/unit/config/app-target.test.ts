import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAppTarget } from '../../../src/config/app-target.js';
import { ROOT, VENV_PYTHON } from '../../helpers/corral.js';
import { usageError } from '../../helpers/errors.js';

/** The one line an APP parseAppTarget refuses gets. */
const refusal = (app: string): string => usageError(() => parseAppTarget(app));

// What follows the colon. Accepted: a name, uvicorn's dotted attribute, or gunicorn's call of a name
// with arguments ast.literal_eval takes.
const ACCEPTED = [
  'app',
  'app.sub',
  'create_app()',
  "create_app('prod', debug=False)",
  "create_app('x', n=2)",
  'f(1, 2.5, -3, +4, 1e3, 0x1F, 0o7, 0b1, 1_000, 1j, 1+2j, -1-2j, .5, 1., 0, 00, 0_0, 1.e5)',
  'f(None, True, False, ...)',
  `f('a' 'b', b'x', rb'\\d', R'x', u'x', '''tri'ple''', "dq", 'it\\'s', "")`,
  'f([1, (2, 3), {4: 5}, {6, 7}, set(), (), (1,), [], {}, {(1, 2): [3]}])',
  "f(\n  'x',\n  n=2,  # a comment\n)",
  'f (1)',
  'f(1,)',
  'f(x=1, y=2)',
  'f(x=1, x=2)',
  'f(-(1))',
  'f((1)+2j)',
  'f(name="évian")',
  'f(1) ',
];

const REFUSED = [
  'f(x)',
  'f(os.environ)',
  'f(*a)',
  "f(**{'a': 1})",
  'f(x=1, 2)',
  'f(class=1)',
  "f(f'x')",
  'f(--1)',
  'f(-True)',
  "f(-'x')",
  'f(1+2)',
  'f(1j+2j)',
  "f(b'a' 'b')",
  'f(01)',
  'f(1_)',
  'a.b()',
  'f()()',
  'f(1) + 1',
  ' f()',
  'f(',
  'f(1',
  'f(,)',
  'f(1,,)',
  'f({[1]: 2})',
  'f({set(): 2})',
  'f([*[1]])',
  "f(ur'x')",
  'f(set([1]))',
  'f(lambda: 1)',
  'f(1 if 1 else 2)',
  "f(b'é')",
  "f('unterminated)",
  'None()',
  'f(x==1)',
  'f("a" 1)',
  'f(2**3)',
  'f\n(1)',
  '',
];

describe('APP: module:attribute, or gunicorn\'s module:function(literal arguments)', () => {
  it('takes the attribute forms as they are', () => {
    expect(parseAppTarget('app.main:app')).toEqual({ module: 'app.main', attribute: 'app' });
    expect(parseAppTarget('app.main:api.app')).toEqual({ module: 'app.main', attribute: 'api.app' });
  });

  it('reads a call: the function and its arguments', () => {
    expect(parseAppTarget("app.main:create_app('prod', debug=False)")).toEqual({
      module: 'app.main',
      attribute: 'create_app',
      call: { args: "'prod', debug=False" },
    });
    expect(parseAppTarget('m:create_app()').call).toEqual({ args: '' });
  });

  it.each(ACCEPTED)('accepts m:%s', (expression) => {
    expect(parseAppTarget(`m:${expression}`).module).toBe('m');
  });

  it.each(REFUSED)('refuses m:%s, naming the APP', (expression) => {
    expect(refusal(`m:${expression}`)).toMatch(/^APP "m:.*": .*; expected module:attribute/s);
  });

  it('says where and what', () => {
    expect(refusal('app:create_app(os.environ)')).toMatch(/^APP "app:create_app\(os.environ\)": os is not a literal at column 16; /);
    expect(refusal('app:create_app(x=1, 2)')).toContain('a positional argument follows a keyword argument');
    expect(refusal('app')).toBe("APP \"app\": expected module:attribute, e.g. app.main:app, or app.main:create_app('prod', debug=False)");
  });

  it('agrees with gunicorn\'s rules as the worker applies them (Python\'s ast)', () => {
    // corral_runtime.app_target.parse_call: what the worker evaluates; it raises for anything gunicorn refuses.
    const script = [
      'import json, sys',
      `sys.path.insert(0, ${JSON.stringify(path.join(ROOT, 'src', 'python'))})`,
      'from corral_runtime.app_target import parse_call, AppCallError',
      'verdicts = []',
      'for expression in json.loads(sys.stdin.read()):',
      '    try:',
      '        if not all(part.isidentifier() for part in expression.split(".")):',
      '            parse_call(expression)',
      '        verdicts.append(expression != "")',
      '    except AppCallError:',
      '        verdicts.append(False)',
      'print(json.dumps(verdicts))',
    ].join('\n');
    const cases = [...ACCEPTED, ...REFUSED];
    const python = JSON.parse(execFileSync(VENV_PYTHON, ['-c', script], { input: JSON.stringify(cases), encoding: 'utf8' })) as boolean[];
    const typescript = cases.map((expression) => {
      try {
        parseAppTarget(`m:${expression}`);
        return true;
      } catch {
        return false;
      }
    });
    const disagreements = cases.filter((_, index) => python[index] !== typescript[index]);
    expect(disagreements).toEqual([]);
    expect(typescript).toEqual(cases.map((_, index) => index < ACCEPTED.length));
  });
});
