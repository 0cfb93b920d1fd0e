/**
 * The session search's invariants, over generated searches interleaved on
 * one Envoy worker's round-robin ring: S1 no pod is asked twice by one
 * search; S2 a session some pod holds is found (up to 64 pods and within
 * sessionSearchRetries); S3 a search that ends with 404 asked every pod.
 * Envoy's part is modelled as its source behaves (round robin, the
 * previous_hosts predicate with host_selection_retry_max_attempts picks, the
 * retry count); mcp-pin's part is the real SearchAttempt, with the
 * x-mcp-pin-searched header carried from attempt to attempt as Envoy's
 * upstream filters carry it.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import type { ProcessingRequest } from '../../src/extproc/protocol.js';
import { SEARCHED_HEADER, SearchAttempt } from '../../src/extproc/search-attempt.js';
import { wireHeaders } from '../helpers/grpc-clients.js';
import { newMetrics } from '../unit/fakes.js';
import { routeFor } from './shipped-envoy.js';

// The search route as it ships (a session id, no pin: test/protocol/shipped-envoy.ts reads the rendered config).
const SEARCH_ROUTE = routeFor(
  [
    [':method', 'POST'],
    ['mcp-session-id', 's'],
  ],
  { method: 'tools/call' },
);
const MAX_SELECTION_PICKS = SEARCH_ROUTE.retry?.host_selection_retry_max_attempts ?? 1;
const RETRIES = SEARCH_ROUTE.retry?.num_retries ?? 0;

interface Search {
  holder: number | null;
  asked: number[];
  header: string | undefined;
  attempts: number;
  result?: 'found' | 'not-found';
}

const podAddress = (i: number): string => `10.0.${Math.floor(i / 250)}.${(i % 250) + 1}:8080`;

function attemptMessage(pod: string, searched: string | undefined): ProcessingRequest {
  return {
    request: 'request_headers',
    request_headers: {
      headers: { headers: wireHeaders({ ':method': 'POST', 'mcp-session-id': 's', ...(searched ? { [SEARCHED_HEADER]: searched } : {}) }) },
      end_of_stream: false,
    },
    attributes: { 'envoy.filters.http.ext_proc': { fields: { 'upstream.address': { kind: 'stringValue', stringValue: pod } } } },
  } as ProcessingRequest;
}

describe('session search protocol (S1-S3)', () => {
  const metrics = newMetrics();
  it('holds over generated interleavings of concurrent searches on one round-robin ring', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 64 }),
        fc.array(fc.option(fc.nat(), { nil: null }), { minLength: 1, maxLength: 6 }),
        fc.array(fc.nat(), { minLength: 1, maxLength: 400 }),
        fc.nat(),
        (pods, holders, schedule, start) => {
          let rr = start % pods;
          const searches: Search[] = holders.map((h) => ({ holder: h === null ? null : h % pods, asked: [], header: undefined, attempts: 0 }));
          // Envoy picks a host for the next attempt of search s.
          const pick = (s: Search): number => {
            let host = 0;
            for (let n = 0; n < MAX_SELECTION_PICKS; n++) {
              host = rr;
              rr = (rr + 1) % pods;
              if (!s.asked.includes(host)) break;
            }
            return host;
          };
          const step = (s: Search): void => {
            const host = pick(s);
            s.attempts++;
            const [r] = new SearchAttempt({ metrics }).handle(attemptMessage(podAddress(host), s.header));
            if (r!.immediate_response) {
              s.result = 'not-found';
              return;
            }
            const set = r!.request_headers?.response?.header_mutation?.set_headers?.find((h) => h.header.key === SEARCHED_HEADER);
            s.header = set?.header.raw_value.toString();
            expect(s.asked, 'S1: no pod asked twice').to.not.include(host);
            s.asked.push(host);
            if (host === s.holder) s.result = 'found';
            else if (s.attempts > RETRIES) s.result = 'not-found';
          };
          // The schedule interleaves the searches' attempts (each attempt's picks are atomic on a worker).
          for (const k of schedule) {
            const open = searches.filter((s) => !s.result);
            if (open.length === 0) break;
            step(open[k % open.length]!);
          }
          for (const s of searches.filter((x) => !x.result)) while (!s.result) step(s);
          for (const s of searches) {
            if (s.holder !== null) expect(s.result, 'S2: a held session is found').to.equal('found');
            if (s.result === 'not-found')
              expect(
                [...s.asked].sort((a, b) => a - b),
                'S3: every pod asked',
              ).to.deep.equal(Array.from({ length: pods }, (_, i) => i));
          }
        },
      ),
      { numRuns: 2000 },
    );
  });
});
