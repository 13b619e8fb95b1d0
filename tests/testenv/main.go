// Command testenv runs a real Kubernetes control plane for chartbroker's
// tests, envtest-style: embedded etcd, kube-apiserver and the
// kube-controller-manager controllers the broker's behaviour depends on, on
// loopback only. No kubelet, so Pods never run.
//
//	testenv -dir DIR -kubeconfig PATH
//
// The API server keeps an audit log of every write (create, update, patch,
// delete; metadata only, never bodies) in DIR/audit.log, next to the
// kubeconfig's directory when they are the same: tests read who made a
// write there.
//
// It writes an admin kubeconfig to PATH once the API server answers /readyz,
// prints "ready <server-url>" on stdout, and runs until its standard input
// closes or its parent process dies, then stops everything it started.
//
// The API server and the controller manager run as child processes of this
// same binary (`testenv kube-apiserver …`, `testenv kube-controller-manager
// …`): both register process-wide metrics and flags, so they can't share one
// address space.
package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"go.etcd.io/etcd/server/v3/embed"
	"k8s.io/component-base/cli"
	apiserver "k8s.io/kubernetes/cmd/kube-apiserver/app"
	controllermanager "k8s.io/kubernetes/cmd/kube-controller-manager/app"
)

// The controllers chartbroker's tests need: namespace finalization (a
// deleted `namespace: instance` namespace really goes), garbage collection
// (owner references), default ServiceAccounts (the ServiceAccount admission
// plugin wants them before any Pod is admitted), aggregated ClusterRoles
// (admin/edit/view) and the kube-root-ca.crt ConfigMap.
const controllers = "namespace-controller,garbage-collector-controller,serviceaccount-controller," +
	"clusterrole-aggregation-controller,root-ca-certificate-publisher-controller"

func main() {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "kube-apiserver":
			os.Exit(runChild(apiserver.NewAPIServerCommand(), os.Args[2:]))
		case "kube-controller-manager":
			os.Exit(runChild(controllermanager.NewControllerManagerCommand(), os.Args[2:]))
		}
	}
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "testenv: %v\n", err)
		os.Exit(1)
	}
}

// Who wrote what, never with request or response bodies (Secrets pass
// through here).
const auditPolicyYAML = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
  - level: Metadata
    verbs: ["create", "update", "patch", "delete"]
  - level: None
`

func runChild(cmd *cobra.Command, args []string) int {
	cmd.SetArgs(args)
	return cli.Run(cmd)
}

func run() error {
	dir := flag.String("dir", "", "data directory (etcd data, certificates, logs); created if missing")
	kubeconfig := flag.String("kubeconfig", "", "where to write the admin kubeconfig")
	removeDir := flag.Bool("remove-dir", false, "remove -dir on exit (its etcd holds nothing worth keeping)")
	flag.Parse()
	if *dir == "" || *kubeconfig == "" {
		return fmt.Errorf("usage: testenv -dir DIR -kubeconfig PATH")
	}
	if err := os.MkdirAll(*dir, 0o700); err != nil {
		return err
	}
	// Removed only after a clean stop (its logs explain a failed one). This
	// defer runs after every other one below: children and etcd are down.
	cleanExit := false
	defer func() {
		if *removeDir && cleanExit {
			os.RemoveAll(*dir)
		}
	}()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go exitWithParent(cancel)

	pki, err := writePKI(*dir)
	if err != nil {
		return fmt.Errorf("certificates: %w", err)
	}
	ports, err := freePorts(3)
	if err != nil {
		return err
	}
	etcdPort, etcdPeerPort, apiPort := ports[0], ports[1], ports[2]

	etcd, err := startEtcd(filepath.Join(*dir, "etcd"), etcdPort, etcdPeerPort)
	if err != nil {
		return fmt.Errorf("etcd: %w", err)
	}
	defer etcd.Close()

	auditPolicy := filepath.Join(*dir, "audit-policy.yaml")
	if err := os.WriteFile(auditPolicy, []byte(auditPolicyYAML), 0o600); err != nil {
		return err
	}
	server := fmt.Sprintf("https://127.0.0.1:%d", apiPort)
	adminToken := pki.adminToken
	apiArgs := []string{
		"--etcd-servers=" + fmt.Sprintf("http://127.0.0.1:%d", etcdPort),
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(apiPort),
		"--tls-cert-file=" + pki.serverCert,
		"--tls-private-key-file=" + pki.serverKey,
		"--client-ca-file=" + pki.caCert,
		"--token-auth-file=" + pki.tokenFile,
		"--authorization-mode=Node,RBAC",
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + pki.saKey,
		"--service-account-signing-key-file=" + pki.saKey,
		"--api-audiences=https://kubernetes.default.svc.cluster.local",
		"--service-cluster-ip-range=10.96.0.0/16",
		"--allow-privileged=true",
		"--enable-priority-and-fairness=false",
		"--disable-admission-plugins=ServiceAccount",
		"--profiling=false",
		"--cert-dir=" + filepath.Join(*dir, "apiserver-certs"),
		"--audit-policy-file=" + auditPolicy,
		"--audit-log-path=" + filepath.Join(*dir, "audit.log"),
		"--audit-log-format=json",
		"--v=0",
	}
	apiLog := filepath.Join(*dir, "kube-apiserver.log")
	api, err := startChild(ctx, "kube-apiserver", apiArgs, apiLog)
	if err != nil {
		return err
	}
	if err := waitReady(ctx, server, pki, adminToken, api); err != nil {
		return fmt.Errorf("kube-apiserver never became ready (log: %s): %w\n%s", apiLog, err, tail(apiLog))
	}

	if err := writeKubeconfig(*kubeconfig, server, pki, adminToken); err != nil {
		return err
	}
	// The controller manager reads the same admin kubeconfig.
	cmLog := filepath.Join(*dir, "kube-controller-manager.log")
	cm, err := startChild(ctx, "kube-controller-manager", []string{
		"--kubeconfig=" + *kubeconfig,
		"--controllers=" + controllers,
		"--leader-elect=false",
		"--secure-port=0",
		"--root-ca-file=" + pki.caCert,
		"--use-service-account-credentials=false",
		"--concurrent-namespace-syncs=4",
		"--concurrent-gc-syncs=4",
		"--v=0",
	}, cmLog)
	if err != nil {
		return err
	}

	fmt.Printf("ready %s\n", server)
	_ = os.Stdout.Sync()

	select {
	case <-ctx.Done():
	case err := <-api.done:
		return fmt.Errorf("kube-apiserver exited: %v\n%s", err, tail(apiLog))
	case err := <-cm.done:
		return fmt.Errorf("kube-controller-manager exited: %v\n%s", err, tail(cmLog))
	}
	cm.stop()
	api.stop()
	cleanExit = true
	return nil
}

// exitWithParent cancels when standard input closes (the parent's end of the
// pipe goes away with it, whichever thread spawned us) or when the parent
// process is gone (re-parented to init or a subreaper).
func exitWithParent(cancel context.CancelFunc) {
	parent := os.Getppid()
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		cancel()
	}()
	for {
		time.Sleep(500 * time.Millisecond)
		if os.Getppid() != parent {
			cancel()
			return
		}
	}
}

type child struct {
	cmd  *exec.Cmd
	done chan error
}

func startChild(ctx context.Context, name string, args []string, logPath string) (*child, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, append([]string{name}, args...)...)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	// If this process is killed outright, the kernel kills the child too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	c := &child{cmd: cmd, done: make(chan error, 1)}
	go func() {
		c.done <- cmd.Wait()
		logFile.Close()
	}()
	go func() {
		<-ctx.Done()
		c.stop()
	}()
	return c, nil
}

func (c *child) stop() {
	if c.cmd.Process == nil {
		return
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(5 * time.Second):
		_ = c.cmd.Process.Kill()
	}
}

func startEtcd(dir string, port, peerPort int) (*embed.Etcd, error) {
	cfg := embed.NewConfig()
	cfg.Dir = dir
	cfg.Name = "testenv"
	cfg.LogLevel = "error"
	cfg.LogOutputs = []string{filepath.Join(filepath.Dir(dir), "etcd.log")}
	client := url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", port)}
	peer := url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", peerPort)}
	cfg.ListenClientUrls = []url.URL{client}
	cfg.AdvertiseClientUrls = []url.URL{client}
	cfg.ListenPeerUrls = []url.URL{peer}
	cfg.AdvertisePeerUrls = []url.URL{peer}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	// Tests write a lot and never need durability across a machine crash.
	cfg.UnsafeNoFsync = true
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, err
	}
	select {
	case <-e.Server.ReadyNotify():
		return e, nil
	case <-time.After(60 * time.Second):
		e.Close()
		return nil, fmt.Errorf("not ready after 60s")
	}
}

func waitReady(ctx context.Context, server string, pki *pkiFiles, token string, api *child) error {
	pool := x509.NewCertPool()
	caPEM, err := os.ReadFile(pki.caCert)
	if err != nil {
		return err
	}
	pool.AppendCertsFromPEM(caPEM)
	client := &http.Client{
		Timeout:   5 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}},
	}
	deadline := time.Now().Add(3 * time.Minute)
	var last string
	for time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-api.done:
			return fmt.Errorf("exited: %v", err)
		case <-time.After(200 * time.Millisecond):
		}
		req, _ := http.NewRequest(http.MethodGet, server+"/readyz", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := client.Do(req)
		if err != nil {
			last = err.Error()
			continue
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			return nil
		}
		last = fmt.Sprintf("%d %s", resp.StatusCode, body)
	}
	return fmt.Errorf("timed out; last answer: %s", last)
}

func writeKubeconfig(path, server string, pki *pkiFiles, token string) error {
	caPEM, err := os.ReadFile(pki.caCert)
	if err != nil {
		return err
	}
	cfg := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: testenv
  cluster:
    server: %s
    certificate-authority-data: %s
users:
- name: admin
  user:
    token: %s
contexts:
- name: testenv
  context:
    cluster: testenv
    user: admin
current-context: testenv
`, server, base64.StdEncoding.EncodeToString(caPEM), token)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(cfg), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func freePorts(n int) ([]int, error) {
	var ports []int
	var listeners []net.Listener
	defer func() {
		for _, l := range listeners {
			l.Close()
		}
	}()
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		listeners = append(listeners, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func tail(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	var lines []string
	s := bufio.NewScanner(f)
	s.Buffer(make([]byte, 1<<20), 1<<20)
	for s.Scan() {
		lines = append(lines, s.Text())
		if len(lines) > 30 {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, "\n")
}
