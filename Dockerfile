# syntax=docker/dockerfile:1
#
# Images of the example programs, one target each, every one with irsactl
# so that `kubectl exec deploy/mcp-server -- irsactl doctor` works in the pod:
#
#   make images                        (all three, tagged $(IMAGE_REPO)/NAME:$(IMAGE_TAG))
#   docker build --target mcp-backend -t ghcr.io/irsakit/mcp-backend:dev .
#
# The binaries are static (CGO_ENABLED=0) and reproducible (-trimpath); the
# runtime image has CA certificates, no shell and no package manager, and
# runs as the non-root user 65532. examples/image_test.go runs the build
# command below, checks the binaries are static and runs them in an empty
# root against the local AWS stand-ins: keep it one RUN instruction.
# Pin the base images by digest in your own registry mirror.

ARG GO_VERSION=1.26
FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
# Modules first, so that a source change does not download them again.
COPY go.mod go.sum ./
COPY examples/go.mod examples/go.sum ./examples/
RUN go mod download && cd examples && go mod download
COPY . .
ARG OUT=/out
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o "$OUT/" ./cmd/irsactl && cd examples && CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o "$OUT/" ./mcp-backend ./secret-reader ./s3-list

# distroless static: CA certificates, /etc/passwd with nonroot (65532),
# tzdata; nothing else.
FROM gcr.io/distroless/static-debian12:nonroot AS runtime
COPY --from=build /out/irsactl /usr/local/bin/irsactl
USER 65532:65532

FROM runtime AS secret-reader
COPY --from=build /out/secret-reader /usr/local/bin/secret-reader
ENTRYPOINT ["/usr/local/bin/secret-reader"]

FROM runtime AS s3-list
COPY --from=build /out/s3-list /usr/local/bin/s3-list
ENTRYPOINT ["/usr/local/bin/s3-list"]

# Last, so a plain `docker build .` builds the backend.
FROM runtime AS mcp-backend
COPY --from=build /out/mcp-backend /usr/local/bin/mcp-backend
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/mcp-backend"]
