# smtp-bridge container. Everything the bridge writes lives in volumes, never
# in the container's own layer: /app/config (your config; the demo device's
# generated password is written beside it), /app/certs (the self-signed
# listener certificate, created on first start), /app/spool (accepted
# messages: keep it, or queued mail is lost with the container) and
# /app/captured (the demo's capture upstream). Use named volumes (see
# compose.yaml): an anonymous volume is new for every `docker run`.
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json ./
COPY src ./src
RUN npm ci --no-audit --no-fund

FROM node:20-bookworm-slim
# openssl creates the self-signed listener certificate on first start.
RUN apt-get update && apt-get install -y --no-install-recommends openssl && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund
COPY --from=build /app/dist ./dist
# Only the demo config (.dockerignore keeps local passwords out); a volume first
# mounted here is filled with it, and that volume then keeps the generated password.
COPY config/smtp-bridge.yaml ./config/smtp-bridge.yaml
RUN mkdir -p certs spool captured && chown -R node:node /app/config /app/certs /app/spool /app/captured
USER node
VOLUME ["/app/config", "/app/certs", "/app/spool", "/app/captured"]
EXPOSE 2587 2465
# Asks the bridge's own /healthz (http.listen of the config): listeners up and spool writable.
HEALTHCHECK --interval=30s --timeout=15s --start-period=20s --retries=3 \
  CMD ["node", "dist/src/cli/main.js", "health", "-c", "config/smtp-bridge.yaml"]
# SIGTERM lets open sessions finish their message (delivery.shutdown_wait) before the
# container stops; SIGHUP (docker kill -s HUP) re-reads the config.
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "dist/src/cli/main.js"]
CMD ["serve", "-c", "config/smtp-bridge.yaml"]
