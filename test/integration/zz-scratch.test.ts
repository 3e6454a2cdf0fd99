import http from 'node:http';
import { afterEach, it } from 'vitest';
import { freePort, get, isAlive, killAllCorrals, startCorral, TEST_APPS, waitFor } from '../helpers/corral.js';
afterEach(() => killAllCorrals());
it('stream', async () => {
  const port = await freePort();
  const corral = startCorral(['-w', '1', '--graceful-timeout', '2', '-b', `127.0.0.1:${port}`, '--app-dir', TEST_APPS, 'app:app']);
  const [old] = await corral.waitForReadyWorkers(1);
  const request = http.get({ port, host: '127.0.0.1', path: '/stream', agent: false }, (response) => { response.resume(); });
  request.on('error', () => undefined);
  await corral.waitForLog((r) => r.msg === '/stream started');
  corral.signal('SIGHUP');
  await waitFor(() => !isAlive(old!), 8_000, 'x');
  await new Promise((r) => setTimeout(r, 500));
  console.log(corral.records.map((r) => `${r.time} ${r.pid} ${r.name ?? ''} ${r.msg} ${JSON.stringify({ code: r.code, signal: r.signal, reason: r.reason })}`).join('\n'));
});
it('hung', async () => {
  const port = await freePort();
  const corral = startCorral(['-w', '1', '-t', '2', '-b', `127.0.0.1:${port}`, '--app-dir', TEST_APPS, 'app:app']);
  const [pid] = await corral.waitForReadyWorkers(1);
  void get({ port }, '/block?s=60', 70_000).catch(() => undefined);
  await corral.waitForLog((r) => r.msg === '/block started');
  await waitFor(() => corral.readyWorkerPids().some((other) => other !== pid), 20_000, 'a replacement worker');
  console.log(corral.records.filter((r) => r.stream !== 'stderr').map((r) => `${r.time} ${r.pid} ${r.name ?? ''} ${r.msg} ${JSON.stringify({ code: r.code, signal: r.signal, reason: r.reason, silent: r.silent })}`).join('\n'));
});
