import { expect } from 'chai';
import { Metrics, REQUEST_OUTCOMES } from '../../src/metrics.js';

/** One sample's value from a scrape, as Prometheus reads it. */
const sample = (text: string, name: string): number | undefined => {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.slice(name.length + 1));
};

describe('Metrics: per-request counts kept as numbers, handed to prom-client when scraped', () => {
  it('shows every outcome and cache series at 0 on the first scrape, then exact counts, never counted twice', async () => {
    const m = new Metrics();
    const first = await m.registry.metrics();
    for (const o of REQUEST_OUTCOMES) expect(sample(first, `mcp_pin_requests_total{outcome="${o}"}`), o).to.equal(0);
    expect(sample(first, 'mcp_pin_pin_cache_lookups_total{result="hit"}')).to.equal(0);
    expect(sample(first, 'mcp_pin_streams_total')).to.equal(0);
    for (let i = 0; i < 5; i++) m.outcome('pinned');
    m.outcome('unknown_session');
    m.pinCache(true);
    m.pinCache(false);
    m.streamAccepted();
    m.openStreams += 2;
    for (let scrape = 0; scrape < 3; scrape++) {
      const text = await m.registry.metrics();
      expect(sample(text, 'mcp_pin_requests_total{outcome="pinned"}'), `scrape ${scrape}`).to.equal(5);
      expect(sample(text, 'mcp_pin_requests_total{outcome="unknown_session"}')).to.equal(1);
      expect(sample(text, 'mcp_pin_pin_cache_lookups_total{result="hit"}')).to.equal(1);
      expect(sample(text, 'mcp_pin_pin_cache_lookups_total{result="miss"}')).to.equal(1);
      expect(sample(text, 'mcp_pin_streams_total')).to.equal(1);
      expect(sample(text, 'mcp_pin_streams_open')).to.equal(2);
    }
    m.outcome('pinned');
    m.openStreams--;
    const later = await m.registry.metrics();
    expect(sample(later, 'mcp_pin_requests_total{outcome="pinned"}')).to.equal(6);
    expect(sample(later, 'mcp_pin_streams_open')).to.equal(1);
  });

  it('times one message with one observation', async () => {
    const m = new Metrics();
    m.messageAnswered('request_headers', 0.0001);
    m.messageAnswered(undefined, 0.0001);
    const text = await m.registry.metrics();
    expect(sample(text, 'mcp_pin_message_seconds_count{phase="request_headers"}')).to.equal(1);
    expect(sample(text, 'mcp_pin_message_seconds_count{phase="unknown"}')).to.equal(1);
  });
});
