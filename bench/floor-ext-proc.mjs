/**
 * The floor of the design: the least any grpc-js ext_proc server can do for a
 * pinned request. It serves the project's protos exactly as proto-loader defines
 * them with its options (mcp-pin tunes two steps of that, src/protos.ts) and
 * answers every request_headers at once with one fixed
 * header mutation (the pin header naming FLOOR_POD) and the response phase
 * skipped: no store, no metrics, no logging, no per-request state. The
 * benchmark runs it in the same Envoy setup as mcp-pin; what mcp-pin costs
 * beyond it is mcp-pin's own.
 *
 * Env: FLOOR_LISTEN (host:port, port 0 picks one), FLOOR_POD (host:port),
 * FLOOR_PIN_HEADER (the template's pinHeader). Prints {"ready":true,"grpcPort":N}.
 */
// Plain JavaScript on the build (npm run bench builds first), so it runs
// exactly as mcp-pin does: compiled, no loader (tsx measurably changed its
// CPU under the profiler).
import * as grpc from '@grpc/grpc-js';
import { protoLoaderServiceDefinition } from '../dist/src/protos.js';

const listen = process.env.FLOOR_LISTEN ?? '127.0.0.1:0';
const pod = process.env.FLOOR_POD;
if (!pod) throw new Error('FLOOR_POD is required');
const pinHeader = process.env.FLOOR_PIN_HEADER;
if (!pinHeader) throw new Error('FLOOR_PIN_HEADER is required');

const PINNED = {
  request_headers: {
    response: {
      header_mutation: { set_headers: [{ header: { key: pinHeader, raw_value: Buffer.from(pod) }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' }] },
      clear_route_cache: true,
    },
  },
  mode_override: { response_header_mode: 'SKIP' },
};
// Any other phase (none is asked for on this path) is let through as it is.
const CONTINUE = {
  request_body: { request_body: { response: {} } },
  response_headers: { response_headers: { response: {} } },
  response_body: { response_body: { response: {} } },
  request_trailers: { request_trailers: {} },
  response_trailers: { response_trailers: {} },
};

const server = new grpc.Server();
server.addService(protoLoaderServiceDefinition(), {
  Process: (call) => {
    let ended = false;
    const end = () => {
      if (ended) return;
      ended = true;
      call.end();
    };
    call.on('data', (msg) => {
      if (ended) return;
      if (msg.request === 'request_headers') {
        call.write(PINNED);
        // Nothing more comes for this request: close as mcp-pin does.
        end();
      } else if (msg.request && CONTINUE[msg.request]) call.write(CONTINUE[msg.request]);
    });
    call.on('end', end);
    call.on('error', () => {});
  },
});
server.bindAsync(listen, grpc.ServerCredentials.createInsecure(), (err, port) => {
  if (err) throw err;
  process.stdout.write(`${JSON.stringify({ ready: true, grpcPort: port })}\n`);
});
process.on('SIGTERM', () => server.tryShutdown(() => process.exit(0)));
