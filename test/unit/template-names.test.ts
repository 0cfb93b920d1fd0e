import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { renderEnvoyConfig } from '../../envoy/render.js';
import { ENVOY_DEFAULTS } from '../../envoy/params.js';
import { paramsFromValues } from '../../envoy/values.js';
import { ORIGINAL_URL_HEADER } from '../../src/extproc/attempt.js';
import { SEARCHED_HEADER } from '../../src/extproc/search-attempt.js';
import { ROLE_METADATA, STREAM_ROLES } from '../../src/extproc/stream-handler.js';
import { CLIENT_SESSION_HEADER, REDIRECTED_SESSION_HEADER, SESSION_HEADER } from '../../src/mcp-headers.js';
import { ENVOY_REPLY_HEADER } from '../../src/recovery/forwarder.js';

/** The shipped Kubernetes values, rendered: what Envoy really runs. */
const rendered = renderEnvoyConfig(
  paramsFromValues(JSON.parse(readFileSync(new URL('../../deploy/k8s/values.json', import.meta.url), 'utf8')) as Record<string, string>),
);

describe("the template's header and metadata names are the TypeScript constants (issue 31 item 3)", () => {
  it('every x-mcp-pin- name Envoy is configured with is one mcp-pin uses, and each one mcp-pin uses is configured', () => {
    const own = [CLIENT_SESSION_HEADER, ENVOY_REPLY_HEADER, ROLE_METADATA, SEARCHED_HEADER, ENVOY_DEFAULTS.pinHeader, ENVOY_DEFAULTS.upstreamHeader];
    const inConfig = new Set(rendered.match(/x-mcp-pin-[a-z-]*/g) ?? []);
    // The bare prefix: the public listener strips every such header a client sends.
    inConfig.delete('x-mcp-pin-');
    expect([...inConfig].sort()).to.deep.equal([...new Set(own)].sort());
    for (const name of [SESSION_HEADER, REDIRECTED_SESSION_HEADER, 'x-envoy-attempt-count']) expect(rendered, name).to.include(name);
    // Envoy sets it itself when it starts a request again (and drops a client's): named nowhere in the config, only read.
    expect(ORIGINAL_URL_HEADER).to.equal('x-envoy-original-url');
  });

  it('the roles the filters name in their gRPC metadata are the stream roles mcp-pin serves', () => {
    const roles = new Set<string>();
    const walk = (node: unknown): void => {
      if (Array.isArray(node)) {
        for (const x of node) walk(x);
        return;
      }
      if (!node || typeof node !== 'object') return;
      const o = node as Record<string, unknown>;
      if (o.key === ROLE_METADATA && typeof o.value === 'string') roles.add(o.value);
      for (const v of Object.values(o)) walk(v);
    };
    walk(parse(rendered));
    expect([...roles].sort()).to.deep.equal(STREAM_ROLES.filter((r) => r !== 'request').sort());
  });
});
