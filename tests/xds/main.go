// Command xds is the tests' own xDS server: it serves one empty snapshot (no clusters, no
// listeners) to every node over ADS, both state-of-the-world and delta. That is all Istio's
// pilot-agent needs to call its Envoy ready: Envoy has accepted CDS and LDS once. A test
// starts it late to make the sidecar become ready late.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"syscall"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	cache "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	resource "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	server "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"google.golang.org/grpc"
)

// oneKey maps every node to the same snapshot: the tests do not know the node id that
// pilot-agent makes up (sidecar~IP~POD.NAMESPACE~...).
type oneKey struct{}

func (oneKey) ID(*core.Node) string { return "all" }

func main() {
	addr := flag.String("addr", "127.0.0.1:15010", "host:port to listen on")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	snapshots := cache.NewSnapshotCache(false, oneKey{}, nil)
	empty, err := cache.NewSnapshot("1", map[resource.Type][]types.Resource{
		resource.ClusterType:  {},
		resource.ListenerType: {},
	})
	if err != nil {
		log.Fatalf("xds: snapshot: %v", err)
	}
	if err := snapshots.SetSnapshot(ctx, "all", empty); err != nil {
		log.Fatalf("xds: set snapshot: %v", err)
	}

	listener, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatalf("xds: listen %s: %v", *addr, err)
	}
	grpcServer := grpc.NewServer()
	discovery.RegisterAggregatedDiscoveryServiceServer(grpcServer, server.NewServer(ctx, snapshots, nil))
	go func() {
		<-ctx.Done()
		grpcServer.Stop()
	}()
	// The marker the tests wait for: from here on the port accepts.
	fmt.Printf("xds listening on %s\n", listener.Addr())
	if err := grpcServer.Serve(listener); err != nil {
		fmt.Fprintf(os.Stderr, "xds: %v\n", err)
		os.Exit(1)
	}
}
