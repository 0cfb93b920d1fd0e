/**
 * Mutual TLS between Envoy and mcp-pin (issue 19): mcp-pin's gRPC port is a
 * control plane, so with --tls-client-ca-file only a client holding a
 * certificate from that CA gets in. Real Envoy 1.40 (template value
 * extProcTls), real mcp-pin, SDK pods and client; certificates made with
 * openssl for the test.
 */
import { expect } from 'chai';
import * as grpc from '@grpc/grpc-js';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { makeCerts } from '../helpers/certs.js';
import { healthStatus } from '../helpers/grpc-clients.js';
import { connectClient } from '../helpers/mcp-client.js';
import { stackPerTest } from '../helpers/stack-fixture.js';

describe('mutual TLS between Envoy and mcp-pin (issue 19)', function () {
  this.timeout(120_000);
  const fx = stackPerTest();
  let dir = '';
  // Runs after the fixture's own hook has stopped the stack that used these files.
  afterEach(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('serves Envoy over mutual TLS (traffic and a recovery work) and refuses a client without a certificate from the CA', async () => {
    dir = mkdtempSync(`${tmpdir()}/mcp-pin-mtls-`);
    makeCerts(dir);
    await fx.start({
      pods: 2,
      pinEnv: { MCP_PIN_TLS_CERT_FILE: `${dir}/server.pem`, MCP_PIN_TLS_KEY_FILE: `${dir}/server.key`, MCP_PIN_TLS_CLIENT_CA_FILE: `${dir}/ca.pem` },
      envoy: { extProcTls: { certFile: `${dir}/envoy.pem`, keyFile: `${dir}/envoy.key`, caFile: `${dir}/ca.pem` } },
    });
    expect(fx.stack.pins[0]!.proc.output).to.contain('"mutual":true');
    // Through Envoy: pinned calls, and a recovery (the retry's ext_proc stream goes over the same TLS).
    const c = await connectClient(fx.stack.mcpUrl);
    fx.clients.push(c);
    const home = fx.stack.podByName((await c.whoami()).pod);
    expect((await c.echo('over mTLS')).pod).to.equal(home.name);
    await home.restartInPlace();
    expect((await c.echo('recovered over mTLS')).text).to.equal('recovered over mTLS');

    const port = fx.stack.pins[0]!.port;
    const ca = readFileSync(`${dir}/ca.pem`);
    const tryCheck = (creds: grpc.ChannelCredentials): Promise<string> => healthStatus(port, creds);
    // Without a client certificate, with one from another CA, or in plain text: refused.
    expect(await tryCheck(grpc.credentials.createSsl(ca))).to.match(/^refused/);
    expect(await tryCheck(grpc.credentials.createSsl(ca, readFileSync(`${dir}/stranger.key`), readFileSync(`${dir}/stranger.pem`)))).to.match(/^refused/);
    expect(await tryCheck(grpc.credentials.createInsecure())).to.match(/^refused/);
    // With Envoy's certificate: served (the refusals above are about the certificate).
    expect(await tryCheck(grpc.credentials.createSsl(ca, readFileSync(`${dir}/envoy.key`), readFileSync(`${dir}/envoy.pem`)))).to.equal('SERVING');
    // What the kubelet probes (deploy/k8s, deploy/overlays/mtls): the metrics port's /healthz, plain HTTP whatever the gRPC port's TLS.
    expect((await fetch(`http://127.0.0.1:${fx.stack.pins[0]!.metricsPort}/healthz`)).status).to.equal(200);
  });
});
