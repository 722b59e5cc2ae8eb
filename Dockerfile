# zitadel-ext-authz container image: a static binary, CA certificates and
# nothing else; runs as uid 65532 (non-root). Build with `make image`.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/zitadel-ext-authz ./cmd/zitadel-ext-authz
# A directory the non-root user owns, for zitadel-bootstrap's output in
# docker-compose.yml (a named volume mounted there inherits the owner).
RUN mkdir -p /out/var/lib/zitadel-ext-authz

FROM scratch
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build --chown=65532:65532 /out/var/lib/zitadel-ext-authz /var/lib/zitadel-ext-authz
COPY --from=build /out/zitadel-ext-authz /zitadel-ext-authz
USER 65532:65532
EXPOSE 9001 4180
ENTRYPOINT ["/zitadel-ext-authz"]
CMD ["serve", "--config", "/etc/zitadel-ext-authz/config.toml"]
HEALTHCHECK --interval=10s --timeout=5s CMD ["/zitadel-ext-authz", "healthcheck"]
