import { FLAGS, SETTINGS, SETTINGS_BY_NAME, type Setting } from './settings-table.js';

/**
 * `corral --help`, grouped the way gunicorn documents its settings, the groups and the options in
 * each ordered most used first. Every setting with a command-line flag is in exactly one group
 * (test/unit/config/help.test.ts checks it); settings corral cannot honour are listed on one line at the end.
 */
export const HELP_GROUPS: readonly { title: string; settings: readonly string[] }[] = [
  {
    title: 'Config and app',
    settings: ['config', 'app_dir', 'factory', 'python', 'chdir', 'pythonpath', 'raw_env', 'env_file', 'print_config', 'check_config', 'json', 'preload_app'],
  },
  { title: 'Server socket', settings: ['bind', 'host', 'port', 'uds', 'fd', 'backlog', 'umask', 'reuse_port'] },
  {
    title: 'Workers',
    settings: ['workers', 'worker_class', 'start_method', 'timeout', 'graceful_timeout', 'shutdown_delay', 'keepalive', 'boot_timeout', 'cgroup_root', 'threads', 'worker_connections', 'worker_tmp_dir'],
  },
  {
    title: 'Restarts and recycling',
    settings: ['max_requests', 'max_requests_jitter', 'max_memory', 'memory_check_interval', 'max_worker_lifetime', 'max_worker_lifetime_jitter', 'max_surge'],
  },
  {
    title: 'Logging, metrics and control',
    settings: [
      'loglevel', 'log_format', 'access_log', 'accesslog', 'errorlog', 'logconfig', 'logconfig_json', 'metrics_bind', 'pidfile', 'control_socket',
      'control_socket_disable', 'proc_name', 'access_log_format', 'capture_output', 'enable_stdio_inheritance', 'use_colors', 'disable_redirect_access_to_syslog',
    ],
  },
  {
    title: 'Security',
    settings: [
      'user', 'group', 'forwarded_allow_ips', 'proxy_headers', 'certfile', 'keyfile', 'ssl_keyfile_password', 'ca_certs', 'cert_reqs', 'ssl_version', 'ciphers',
      'suppress_ragged_eofs', 'do_handshake_on_connect',
    ],
  },
  { title: 'Reload (development)', settings: ['reload', 'reload_dirs', 'reload_includes', 'reload_excludes', 'reload_delay', 'reload_extra_files', 'reload_engine'] },
  {
    title: 'uvicorn',
    settings: [
      'http', 'loop', 'ws', 'lifespan', 'root_path', 'limit_concurrency', 'headers', 'server_header', 'date_header', 'interface', 'http2', 'ws_max_size',
      'ws_max_queue', 'ws_ping_interval', 'ws_ping_timeout', 'ws_per_message_deflate', 'h11_max_incomplete_event_size', 'reset_contextvars', 'sendfile', 'asgi_lifespan',
    ],
  },
];

/** Every flag that sets this setting, in the table's order (uvicorn's value-taking bool flags included). */
function flagsOf(setting: Setting): string[] {
  return [...FLAGS].filter(([, target]) => target.setting === setting).map(([flag]) => flag);
}

/** Settings that --help lists among the options: the ones with a flag that corral honours or accepts. */
export function listedInHelp(setting: Setting): boolean {
  return setting.support !== 'unsupported' && flagsOf(setting).length > 0;
}

function optionLine(setting: Setting): string {
  const takesValue = setting.type !== 'bool' || FLAGS.get(flagsOf(setting)[0]!)?.sets === undefined;
  const metavar = !takesValue
    ? ''
    : ` ${setting.type === 'choice' ? `{${setting.choices!.join(',')}}` : setting.type === 'bool' ? 'BOOL' : setting.name.toUpperCase()}`;
  const left = `  ${flagsOf(setting).join(', ')}${metavar}`;
  const note = setting.support === 'ignored' ? `accepted: ${setting.note}` : setting.help;
  return left.length < 34 ? `${left.padEnd(35)}${note}` : `${left}\n${' '.repeat(35)}${note}`;
}

export function helpText(): string {
  const lines = [
    'Usage: corral [options] APP',
    '',
    'Runs the ASGI app APP (module:attribute) in supervised uvicorn workers. Takes gunicorn\'s and',
    'uvicorn\'s options (see docs/configuration.md); every option also reads CORRAL_<OPTION>.',
    '',
    '  -h, --help                       Show this help',
    '  -V, -v, --version                Show the version',
  ];
  const grouped = new Set(HELP_GROUPS.flatMap((group) => group.settings));
  // A setting added to the table but to no group still shows, at the end.
  const others = SETTINGS.filter((setting) => listedInHelp(setting) && !grouped.has(setting.name)).map((setting) => setting.name);
  for (const group of [...HELP_GROUPS, ...(others.length > 0 ? [{ title: 'Other options', settings: others }] : [])]) {
    lines.push('', `${group.title}:`);
    for (const name of group.settings) {
      const setting = SETTINGS_BY_NAME.get(name);
      if (setting && listedInHelp(setting)) lines.push(optionLine(setting));
    }
  }
  const unsupported = SETTINGS.filter((setting) => setting.support === 'unsupported' && setting.flags.length > 0).map((setting) => setting.flags.at(-1));
  lines.push('', `Accepted but not supported (a warning names them): ${unsupported.join(' ')}`);
  return lines.join('\n');
}
