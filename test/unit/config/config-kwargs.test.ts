import { describe, expect, it } from 'vitest';
import { CHECKED_CLASS, resolveChecked, withConfigKwargs } from '../../helpers/config.js';
import { usageError } from '../../helpers/errors.js';

// src/config/config-kwargs.ts, through the resolution that applies it: a checked UvicornWorker
// subclass's CONFIG_KWARGS win over every other source, as under gunicorn + uvicorn-worker.
describe('CONFIG_KWARGS of a UvicornWorker subclass', () => {
  it('takes its CONFIG_KWARGS over every other source, as gunicorn applies them last; what it does not set stays', () => {
    const config = resolveChecked(
      ['-k', CHECKED_CLASS, '--keep-alive', '2', '--forwarded-allow-ips', '10.0.0.1', '--header', 'X-Cli:1', '--loop', 'uvloop'],
      withConfigKwargs({ timeout_keep_alive: 9, forwarded_allow_ips: '*', headers: [['X-Class', 'yes']], server_header: false }),
      { settings: { keepalive: 3 } },
    );
    const source = `worker class ${CHECKED_CLASS}`;
    expect(config.settings.keepalive).toEqual({ value: 9, source });
    expect(config.settings.forwarded_allow_ips).toEqual({ value: '*', source });
    expect(config.settings.server_header).toEqual({ value: false, source });
    expect(config.settings.headers).toEqual({ value: ['X-Class:yes'], source });
    expect(config.settings.loop).toEqual({ value: 'uvloop', source: 'command line' });
    expect(config.uvicorn).toMatchObject({ timeout_keep_alive: 9, forwarded_allow_ips: '*', server_header: false, headers: [['X-Class', 'yes']], loop: 'uvloop' });
    expect(config.settings.config_kwargs!.source).toBe(source);
    expect(Object.keys(config.settings).indexOf('config_kwargs')).toBe(Object.keys(config.settings).indexOf('worker_class') + 1);
    const warnings = config.notices.filter((notice) => notice.level === 'warn').map((notice) => notice.msg);
    expect(warnings).toContain(`CONFIG_KWARGS["timeout_keep_alive"] of worker class ${CHECKED_CLASS} = 9 overrides keepalive = 2 (command line): a worker class's CONFIG_KWARGS win, as under gunicorn`);
    expect(config.workerClass).toEqual({ name: CHECKED_CLASS, paths: ['/srv/app'], configFile: null, passthrough: [] });
  });

  it('maps uvicorn\'s keywords to corral\'s settings; passes the others on; says which have no effect', () => {
    const config = resolveChecked(['-k', CHECKED_CLASS], withConfigKwargs({ limit_max_requests: 500, ws_ping_interval: null, log_level: 'debug', host: '0.0.0.0', log_config: { version: 1 } }, { ssl_context_factory: '<function f>' }));
    expect(config.maxRequests).toBe(500);
    // None is uvicorn's "no pings": passed on, not dropped.
    expect(config.uvicorn).toHaveProperty('ws_ping_interval', null);
    expect(config.uvicorn.log_config).toEqual({ version: 1 });
    expect(config.workerClass).toMatchObject({ passthrough: ['log_level', 'ssl_context_factory'] });
    expect(config.notices.map((notice) => notice.msg)).toContain(`CONFIG_KWARGS["host"] of worker class ${CHECKED_CLASS} has no effect under corral: the master binds the sockets (--bind)`);
  });

  it('refuses a keyword uvicorn.Config does not take, and a bad value, naming the class', () => {
    expect(usageError(() => resolveChecked(['-k', CHECKED_CLASS], withConfigKwargs({ nonsense: 1 })))).toBe(`CONFIG_KWARGS["nonsense"] of worker class ${CHECKED_CLASS}: uvicorn.Config takes no keyword "nonsense" (its workers would fail to start)`);
    expect(usageError(() => resolveChecked(['-k', CHECKED_CLASS], withConfigKwargs({ loop: 'trio' })))).toContain(`CONFIG_KWARGS["loop"] of worker class ${CHECKED_CLASS} "trio": expected one of`);
  });
});
