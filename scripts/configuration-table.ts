// Prints the option tables of docs/configuration.md from the settings table (src/config/settings-table.ts):
//   npx tsx scripts/configuration-table.ts
import { corralEnvName, FLAGS, SETTINGS, uvicornEnvName, type Setting } from '../src/config/settings-table.js';

const SUPPORT = { honoured: 'yes', ignored: 'accepted, no effect', unsupported: 'warning: not supported' } as const;

function cell(text: string): string {
  return text.replace(/\|/g, '\\|');
}

function row(setting: Setting): string {
  const flags = [...FLAGS].filter(([, target]) => target.setting === setting).map(([flag]) => `\`${flag}\``).join(' ');
  const env = [corralEnvName(setting), uvicornEnvName(setting)].filter(Boolean).map((name) => `\`${name}\``).join(' ');
  const names = [...(setting.aliasesOnlyInFile ? [] : [setting.name]), ...(setting.fileAliases ?? [])]
    .filter(() => !setting.notInFile)
    .map((name) => `\`${name}\``)
    .join(' ');
  const what = setting.support === 'honoured' ? setting.help : `${setting.note}`;
  const shownDefault = setting.default === null ? '' : `\`${JSON.stringify(setting.default)}\``;
  return `| ${names || '—'} | ${flags || '(config file)'} | ${env} | ${shownDefault} | ${SUPPORT[setting.support]} | ${cell(what)} |`;
}

const sections: [string, (setting: Setting) => boolean][] = [
  ['Settings with an effect', (setting) => setting.support === 'honoured' && setting.type !== 'hook'],
  ['Accepted, with no effect (the log says what corral does instead)', (setting) => setting.support === 'ignored'],
  ['Not supported (a warning names them whenever they are set)', (setting) => setting.support === 'unsupported' && setting.type !== 'hook'],
];
for (const [title, wanted] of sections) {
  console.log(`### ${title}\n`);
  console.log('| config file | command line | environment | default | corral | meaning |');
  console.log('|---|---|---|---|---|---|');
  for (const setting of SETTINGS.filter(wanted)) console.log(row(setting));
  console.log('');
}
