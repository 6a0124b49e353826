# Both binaries in one small image; compose.yaml picks the command
# (/app/server, /app/server migrate, /app/workers). compose_test.go checks it.
#
# The build stage uses the Go release of go.mod's minor version. The binaries
# are static (CGO_ENABLED=0) and self-contained: the migrations and the
# OpenAPI spec are embedded, so nothing else is copied.
FROM golang:1.26.8-trixie AS build
WORKDIR /src
# Never download another toolchain: the image's Go is the pinned one.
ENV CGO_ENABLED=0 GOTOOLCHAIN=local
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    go build -trimpath -ldflags "-s -w" -o /out/server ./server && \
    go build -trimpath -ldflags "-s -w" -o /out/workers ./workers

# Alpine rather than distroless: the compose healthchecks need an HTTP probe,
# and busybox wget is one without adding a binary or a subcommand.
FROM alpine:3.22.2
RUN addgroup -S -g 10001 orders && adduser -S -D -H -u 10001 -G orders orders
COPY --from=build /out/server /out/workers /app/
WORKDIR /app
USER 10001:10001
EXPOSE 8080 8081
CMD ["/app/server"]
