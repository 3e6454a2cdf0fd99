import { describe, expect, it } from 'vitest';
import { parsePrometheusText, samplesOf } from '../../helpers/prometheus.js';

describe('the test helpers: Prometheus text parser', () => {
  it('parses families, labels with escapes and histogram samples', () => {
    const families = parsePrometheusText(
      [
        '# HELP a_total Things.',
        '# TYPE a_total counter',
        'a_total{reason="x\\"y",b="2"} 3',
        '# HELP h Latency.',
        '# TYPE h histogram',
        'h_bucket{le="0.5"} 1',
        'h_bucket{le="+Inf"} 2',
        'h_sum 0.7',
        'h_count 2',
        '# HELP m Mean.',
        '# TYPE m gauge',
        'm Nan',
        '',
      ].join('\n'),
    );
    expect(samplesOf(families, 'a_total', { reason: 'x"y' })[0]?.value).toBe(3);
    expect(samplesOf(families, 'h_bucket', { le: '+Inf' })[0]?.value).toBe(2);
    expect(samplesOf(families, 'h_count')[0]?.value).toBe(2);
    expect(samplesOf(families, 'm')[0]?.value).toBeNaN();
  });

  it.each(['orphan 1', '# TYPE a counter\na{b=1} 2', '# TYPE a counter\na nope', '# TYPE a bogus'])('rejects %j', (text) => {
    expect(() => parsePrometheusText(text)).toThrow();
  });
});
