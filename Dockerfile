# mcp-pin: multi-stage build, small non-root runtime image.
#
# Base images are build arguments with the official images as defaults;
# pin them by digest in your own build (--build-arg NODE_IMAGE=node@<digest>).
# DEPS=registry (default) installs dependencies with npm ci inside the build;
# DEPS=context takes them from .docker-deps/ in the build context (all/ and
# prod/, each a node_modules made by `npm ci` and `npm ci --omit=dev` on the
# host), for builds whose containers cannot reach the npm registry
# (`npm run test:compose` does that).
ARG NODE_IMAGE=node:24-bookworm-slim

FROM ${NODE_IMAGE} AS build
ARG DEPS=registry
WORKDIR /app
COPY package.json package-lock.json ./
COPY .docker-deps/ /tmp/deps/
RUN if [ "$DEPS" = context ]; then mv /tmp/deps/all/node_modules node_modules; else npm ci --no-audit --no-fund; fi && rm -rf /tmp/deps
COPY tsconfig.json tsconfig.build.json ./
COPY src src
COPY protos protos
COPY envoy envoy
RUN npm run build

# Demo MCP pod for the compose stack (uses the dev dependencies: MCP SDK, tsx).
FROM build AS demo-pod
COPY demo demo
COPY scripts scripts
COPY test/helpers test/helpers
# Numeric (the kubelet can verify runAsNonRoot only for a numeric user) and high (no clash with host users).
USER 10001:10001
ENV POD_HOST=0.0.0.0 POD_PORT=8080
EXPOSE 8080
CMD ["node", "--import", "tsx", "demo/mcp-pod.ts"]

FROM ${NODE_IMAGE} AS prod-deps
ARG DEPS=registry
WORKDIR /app
COPY package.json package-lock.json ./
COPY .docker-deps/ /tmp/deps/
RUN if [ "$DEPS" = context ]; then mv /tmp/deps/prod/node_modules node_modules; else npm ci --omit=dev --no-audit --no-fund; fi && rm -rf /tmp/deps

FROM ${NODE_IMAGE} AS runtime
WORKDIR /app
ENV NODE_ENV=production
COPY --from=prod-deps /app/node_modules node_modules
COPY --from=build /app/dist dist
COPY package.json ./
# `mcp-pin --help`, `mcp-pin --version` (and `docker run --entrypoint mcp-pin ...`).
COPY bin bin
# /run/mcp-pin: where mcp-pin's Unix socket goes (--listen unix:/run/mcp-pin/...),
# its user and group only; a named volume mounted there starts with this owner and mode.
RUN ln -s /app/bin/mcp-pin.js /usr/local/bin/mcp-pin \
 && mkdir -p /run/mcp-pin && chown 10001:10001 /run/mcp-pin && chmod 0770 /run/mcp-pin
USER 10001:10001
# The metrics port; the gRPC port is a Unix socket in the shipped deployments (TCP 50051 on loopback by default).
EXPOSE 9464
# The health endpoint on the metrics port mcp-pin was given (MCP_PIN_METRICS_LISTEN, default 9464;
# a port set in a --config file's mcpPin is not seen here: set the variable).
HEALTHCHECK --interval=5s --timeout=2s --retries=3 \
  CMD ["node", "-e", "const p = (process.env.MCP_PIN_METRICS_LISTEN ?? ':9464').split(':').pop(); fetch('http://127.0.0.1:' + p + '/healthz').then(r => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# Young generation capped at 2 x 8 MB: ~15 MB less RSS under load, same CPU
# (npm run bench:profile). test/helpers/mcp-pin.ts runs the build the same way.
ENTRYPOINT ["node", "--max-semi-space-size=8", "dist/src/main.js"]
