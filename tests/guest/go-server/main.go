// A Go program that exercises the Go runtime in rosv: goroutines on every
// processor, its network poller (epoll) through an HTTP server and client
// over the loopback, timers, the vDSO clock, and asynchronous preemption
// (signals). Prints what it saw and exits 0, or panics.
package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"sync"
	"time"
)

func main() {
	var group sync.WaitGroup
	sums := make([]int, 8)
	for worker := 0; worker < 8; worker++ {
		group.Add(1)
		go func(worker int) {
			defer group.Done()
			for step := 0; step < 1000000; step++ {
				sums[worker] += step % (worker + 1)
			}
		}(worker)
	}
	group.Wait()
	fmt.Println("goroutines done:", sums[7], "on", runtime.NumCPU(), "cpus")

	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(writer http.ResponseWriter, request *http.Request) {
		fmt.Fprintf(writer, "go served %s", request.URL.Path)
	})
	go http.Serve(listener, mux)
	client := http.Client{Timeout: 10 * time.Second}
	for attempt := 0; attempt < 3; attempt++ {
		response, err := client.Get(fmt.Sprintf("http://%s/request/%d", listener.Addr(), attempt))
		if err != nil {
			panic(err)
		}
		body, err := io.ReadAll(response.Body)
		response.Body.Close()
		if err != nil {
			panic(err)
		}
		fmt.Println(string(body))
	}

	start := time.Now()
	time.Sleep(20 * time.Millisecond)
	if elapsed := time.Since(start); elapsed < 20*time.Millisecond {
		panic(fmt.Sprintf("slept only %v", elapsed))
	}
	fmt.Println("timers work")

	// On one processor, a goroutine that never yields: the others run only
	// if the runtime preempts it, which it does with a signal (SIGURG) to
	// the thread running it.
	runtime.GOMAXPROCS(1)
	go func() {
		spins := 0
		for {
			spins++
		}
	}()
	time.Sleep(10 * time.Millisecond)
	runtime.GC()
	fmt.Println("preempted a spinning goroutine")
}
