package calibrate_test

import (
	"context"
	"fmt"
	"net"
	"sync"
	"syscall"
)

// pipeNet is an in-memory network of net.Pipe connections: inside a testing/synctest bubble, a goroutine
// waiting on it is durably blocked, so virtual time advances only when the emulator's timers say so.
type pipeNet struct {
	mu        sync.Mutex
	listeners map[string]*pipeListener
	next      int
}

func newPipeNet() *pipeNet { return &pipeNet{listeners: map[string]*pipeListener{}} }

func (n *pipeNet) Listen() (net.Listener, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.next++
	l := &pipeListener{net: n, addr: pipeAddr(fmt.Sprintf("pipe%d.test:80", n.next)), conns: make(chan net.Conn), done: make(chan struct{})}
	n.listeners[string(l.addr)] = l
	return l, nil
}

func (n *pipeNet) Dial(ctx context.Context, _, addr string) (net.Conn, error) {
	n.mu.Lock()
	l := n.listeners[addr]
	n.mu.Unlock()
	if l == nil {
		return nil, &net.OpError{Op: "dial", Net: "pipe", Err: syscall.ECONNREFUSED}
	}
	client, server := net.Pipe()
	select {
	case l.conns <- server:
		return client, nil
	case <-l.done:
		return nil, &net.OpError{Op: "dial", Net: "pipe", Err: syscall.ECONNREFUSED}
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

type pipeListener struct {
	net   *pipeNet
	addr  pipeAddr
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error {
	l.once.Do(func() {
		close(l.done)
		l.net.mu.Lock()
		delete(l.net.listeners, string(l.addr))
		l.net.mu.Unlock()
	})
	return nil
}

func (l *pipeListener) Addr() net.Addr { return l.addr }

type pipeAddr string

func (pipeAddr) Network() string  { return "pipe" }
func (a pipeAddr) String() string { return string(a) }
