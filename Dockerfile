# The mdp worker image (also runs the one-shot store migration). Builds from source: nothing
# from the host but the repository is needed.
#
#   docker build -t mdp:local .
#   docker run --rm mdp:local node dist/store/migrate-cli.js --help
#
# docker-compose.yml builds it for its `migrate` and `worker` services.

ARG NODE_IMAGE=node:24-bookworm-slim

##### Build: all dependencies, TypeScript → dist/ #####
FROM ${NODE_IMAGE} AS build
WORKDIR /app
# onnxruntime-node ships its CPU binaries in the package; its install script only fetches GPU
# extras, which the image does not use.
ENV ONNXRUNTIME_NODE_INSTALL=skip
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
# Only the runtime sources: tests and benchmarks are not part of the image.
COPY pipeline ./pipeline
COPY store ./store
COPY activities ./activities
COPY workflows ./workflows
COPY workers ./workers
COPY client ./client
RUN npm run build

##### Runtime: production dependencies and the compiled code #####
FROM ${NODE_IMAGE} AS runtime
# The Worker Deployment version this image's workers register; empty = <package version>-<hash of
# the compiled code> (workers/build-id.ts). Name it yourself to match the image tag:
#   docker build --build-arg MDP_BUILD_ID=0.5.0-3f2a1c9 -t mdp:0.5.0-3f2a1c9 .
ARG MDP_BUILD_ID=""
ENV MDP_BUILD_ID=${MDP_BUILD_ID}
ENV NODE_ENV=production \
    ONNXRUNTIME_NODE_INSTALL=skip \
    MDP_METRICS_PORT=9101
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist/pipeline ./dist/pipeline
COPY --from=build /app/dist/store ./dist/store
COPY --from=build /app/dist/activities ./dist/activities
COPY --from=build /app/dist/workflows ./dist/workflows
COPY --from=build /app/dist/workers ./dist/workers
COPY --from=build /app/dist/client ./dist/client
COPY configs ./configs
COPY models ./models

# The node image's unprivileged user; the worker writes nothing to disk.
USER node
EXPOSE 9101
# Process up: /healthz on the metrics port (readiness of Redis/PostgreSQL/Temporal is /readyz).
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.MDP_METRICS_PORT || 9101) + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
CMD ["node", "dist/workers/worker.js", "--config", "configs/streaming.yaml"]
