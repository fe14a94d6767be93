# smtp-bridge container: mount your config at /app/config (and keep /app/spool
# on a volume so accepted messages survive the container).
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
COPY config ./config
RUN mkdir -p certs spool captured && chown -R node:node /app
USER node
VOLUME ["/app/spool", "/app/certs"]
EXPOSE 2587 2465
ENTRYPOINT ["node", "dist/src/cli/main.js"]
CMD ["serve", "-c", "config/smtp-bridge.yaml"]
