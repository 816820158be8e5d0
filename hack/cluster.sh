#!/usr/bin/env bash
# hack/cluster.sh -- a real single-node Kubernetes cluster on this machine, no Docker.
#
#   hack/cluster.sh up           start it and wait for a Ready node, CoreDNS and a
#                                smoke pod behind a ClusterIP/NodePort Service;
#                                idempotent (a healthy cluster is left as it is, ~1 s)
#   hack/cluster.sh down         stop everything and put the host back as `up` found it
#                                (processes, mounts, iptables, nfacct, links, netns,
#                                sysctls, cgroups, kubelet's fixed paths); exit 1 if
#                                check-host then still sees a difference
#   hack/cluster.sh status       component health and the node; exit 0 only when every
#                                component answers and the node is Ready
#   hack/cluster.sh kubeconfig   print the admin kubeconfig's path (last line of stdout)
#   hack/cluster.sh env          KUBECONFIG=, CONTAINERD_ADDRESS=, NODE_IP= lines
#   hack/cluster.sh build        only install packages and build the binaries (CI can cache them)
#   hack/cluster.sh smoke        a pod behind a Service: ClusterIP and NodePort from the
#                                host, kubectl port-forward, pod -> host address (up runs it)
#   hack/cluster.sh snapshot DIR record the host state check-host compares
#   hack/cluster.sh check-host [DIR]  compare the host with DIR (default: the snapshot
#                                `up` took); exit 1 on a difference the cluster made
#
# What runs: etcd (TLS, client certs), kube-apiserver (Node,RBAC; aggregation layer with
# a front-proxy CA and --enable-aggregator-routing), kube-controller-manager (HPA
# included), kube-scheduler, containerd of its own + runc, kubelet (webhook authn/authz,
# serving certificate), a CNI bridge (host-local IPAM, portmap), kube-proxy (iptables
# mode) and CoreDNS as a Deployment in kube-system. Every component has its own client
# certificate from a CA made with openssl. The node is NODE_IP on the bridge BRIDGE
# (the kernel here has no dummy interface); NodePorts answer on NODE_IP. Images are
# never pulled: pause and CoreDNS are built here and imported (imagePullPolicy: Never).
#
# Everything lives outside the repository:
#   ${JOBQUEUE_CLUSTER_DIR:-~/.cache/jobqueue/cluster}   state: pki/ (kept across down),
#       logs/ (logs.old/ after down), host-before/ (the snapshot), and the data down
#       removes: etcd/, containerd/, kubelet/, kubelet-logs/, cni/, run/ (pid files)
#   ${JOBQUEUE_CLUSTERBIN:-~/.cache/jobqueue/clusterbin} kube-controller-manager,
#       kube-scheduler, kubelet, kube-proxy (one wrapper module, like hack/testbin.sh),
#       coredns (only the plugins needed), pause (upstream pause.c, gcc -static)
#   kube-apiserver, etcd, kubectl: from hack/testbin.sh; Go caches shared with it
#       (~/.cache/jobqueue/gomod, gocache; wrapper modules in ~/.cache/jobqueue/gobuild)
#
# Needs: root, Linux (cgroup v1 or v2), Go >= 1.25 (GO=..., else `go` or /usr/local/go),
# network access to the Go module proxy and a Debian mirror on first use. Missing Debian
# packages (containerd runc containernetworking-plugins iptables nftables conntrack nfacct
# umoci skopeo mmdebstrap openssl gcc libc6-dev python3 iproute2 curl) are installed with
# apt-get. Timings on 2 shared cores: the cluster's own binaries from an empty Go build
# cache 12.6 min (on top of hack/testbin.sh's kube-apiserver and etcd); up with binaries
# cached 16-20 s; an up that finds the cluster healthy 0.4 s; down 6-12 s.
#
# Knobs: JOBQUEUE_CLUSTER_DIR, JOBQUEUE_CLUSTERBIN, JOBQUEUE_GOBUILD, JOBQUEUE_GOMODCACHE,
# JOBQUEUE_GOCACHE, GO, JOBQUEUE_CLUSTER_SMOKE=0 (up skips the smoke test).
# Progress and phase times go to stderr.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"

# ---- pinned versions -----------------------------------------------------------------
K8S_VERSION="v1.35.4"           # same as hack/testbin.sh's kube-apiserver
COREDNS_VERSION="v1.12.4"
PAUSE_IMAGE="registry.k8s.io/pause:3.10"
COREDNS_IMAGE="jobqueue.local/coredns:${COREDNS_VERSION}"
PKI_VERSION=2                   # bump when the set of certificates changes

# ---- locations and addresses ---------------------------------------------------------
CACHE_ROOT="${HOME}/.cache/jobqueue"
STATE="${JOBQUEUE_CLUSTER_DIR:-${CACHE_ROOT}/cluster}"
BIN="${JOBQUEUE_CLUSTERBIN:-${CACHE_ROOT}/clusterbin}"
BUILD_ROOT="${JOBQUEUE_GOBUILD:-${CACHE_ROOT}/gobuild}"
export GOMODCACHE="${JOBQUEUE_GOMODCACHE:-${CACHE_ROOT}/gomod}"
export GOCACHE="${JOBQUEUE_GOCACHE:-${CACHE_ROOT}/gocache}"
export GOFLAGS="-mod=mod" CGO_ENABLED=0 GOTOOLCHAIN=local

NODE_NAME="jobqueue-node"
BRIDGE="jqbr0"
NODE_IP="10.244.0.1"
POD_CIDR="10.244.0.0/24"
SERVICE_CIDR="10.96.0.0/16"
API_SERVICE_IP="10.96.0.1"
DNS_IP="10.96.0.10"
API_PORT=6443
ETCD_PORT=2479
SOCK="${STATE}/containerd/containerd.sock"
BEFORE="${STATE}/host-before"
# Sysctls kubelet, kube-proxy and the bridge set; restored by down.
SYSCTLS=(net.ipv4.ip_forward net.bridge.bridge-nf-call-iptables vm.overcommit_memory
         vm.panic_on_oom kernel.panic kernel.panic_on_oops kernel.keys.root_maxkeys
         kernel.keys.root_maxbytes net.ipv4.conf.all.route_localnet
         net.netfilter.nf_conntrack_max net.netfilter.nf_conntrack_tcp_timeout_established
         net.netfilter.nf_conntrack_tcp_timeout_close_wait net.netfilter.nf_conntrack_tcp_be_liberal)
# Paths kubelet and the CNI libraries use whatever their root dirs say.
HOST_PATHS=(/var/lib/kubelet /var/log/containers /var/log/pods /usr/libexec/kubernetes
            /var/lib/cni /etc/cni /opt/cni /run/containerd /var/lib/containerd /run/netns)
COMPONENTS=(etcd kube-apiserver kube-controller-manager kube-scheduler containerd kubelet kube-proxy)

log() { printf '[cluster %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
PHASE_START=$SECONDS PHASE=""
phase() {  # phase NAME: log the previous phase's duration and start NAME
    [[ -z "$PHASE" ]] || log "phase ${PHASE}: $((SECONDS - PHASE_START))s"
    PHASE="$1" PHASE_START=$SECONDS
}

# kube-apiserver, etcd and kubectl; `up` runs hack/testbin.sh to make sure they are there.
TESTBIN="${JOBQUEUE_TESTBIN:-${CACHE_ROOT}/testbin}"
ensure_testbin() { TESTBIN="$("$ROOT/hack/testbin.sh" | tail -n 1)"; }
kubectl_() { "$TESTBIN/kubectl" --kubeconfig "$STATE/admin.kubeconfig" "$@"; }
ctr_() { ctr --address "$SOCK" -n k8s.io "$@"; }

# ---- packages ------------------------------------------------------------------------
ensure_packages() {
    local want=() p
    for p in containerd runc containernetworking-plugins iptables nftables conntrack nfacct \
        umoci skopeo mmdebstrap openssl gcc libc6-dev python3 iproute2 curl; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || want+=("$p")
    done
    ((${#want[@]})) || return 0
    log "apt-get install ${want[*]}"
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${want[@]}" >&2
    # Debian starts the packaged containerd; ours never uses it, and a fresh host had none.
    if [[ " ${want[*]} " == *" containerd "* ]] && command -v systemctl >/dev/null 2>&1; then
        systemctl disable --now containerd >/dev/null 2>&1 || true
    fi
}

find_go() {
    if [[ -n "${GO:-}" ]]; then printf '%s' "$GO"; return; fi
    if command -v go >/dev/null 2>&1; then command -v go; return; fi
    [[ -x /usr/local/go/bin/go ]] || die "no Go toolchain found (set GO=/path/to/go)"
    printf '%s' /usr/local/go/bin/go
}

# ---- binaries ------------------------------------------------------------------------
build_components() {
    local stamp="k8s.io/kubernetes@${K8S_VERSION} coredns@${COREDNS_VERSION}"
    if [[ -f "$BIN/.stamp" && "$(cat "$BIN/.stamp")" == "$stamp" ]]; then return; fi
    mkdir -p "$BIN"
    local go; go="$(find_go)"
    # kube-apiserver's wrapper module (ensure_testbin made it): its go.mod and go.sum serve here too.
    local dir="$BUILD_ROOT/kube-components-${K8S_VERSION}"
    mkdir -p "$dir"
    sed 's#^module .*#module jobqueue.test/cluster/components#' \
        "$BUILD_ROOT/kube-apiserver-${K8S_VERSION}/go.mod" >"$dir/go.mod"
    cp "$BUILD_ROOT/kube-apiserver-${K8S_VERSION}/go.sum" "$dir/go.sum" 2>/dev/null || true
    local minor="${K8S_VERSION#v1.}" ldflags="-s -w" pkg
    for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
        ldflags+=" -X $pkg.gitVersion=${K8S_VERSION} -X $pkg.gitMajor=1"
        ldflags+=" -X $pkg.gitMinor=${minor%%.*} -X $pkg.gitTreeState=clean"
    done
    log "building kube-controller-manager, kube-scheduler, kubelet, kube-proxy ${K8S_VERSION}"
    local start=$SECONDS
    (cd "$dir" && "$go" build -trimpath -ldflags "$ldflags" -o "$BIN/" \
        k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kube-scheduler \
        k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kube-proxy)
    log "components built in $((SECONDS - start))s"
    # CoreDNS with only the plugins a cluster without an upstream resolver needs: the
    # upstream main pulls in every cloud SDK.
    dir="$BUILD_ROOT/coredns-${COREDNS_VERSION}"
    mkdir -p "$dir"
    cp "$HERE/cluster/coredns-main.go" "$dir/main.go"
    printf 'module jobqueue.test/cluster/coredns\n\ngo 1.24.0\n\nrequire github.com/coredns/coredns %s\n' \
        "$COREDNS_VERSION" >"$dir/go.mod"
    start=$SECONDS
    (cd "$dir" && "$go" mod tidy >&2 && "$go" build -trimpath -ldflags "-s -w" -o "$BIN/coredns" .)
    log "coredns built in $((SECONDS - start))s"
    # The sandbox ("pause") container: upstream's pause.c, static.
    local pause_c
    pause_c="$(cd "$BUILD_ROOT/kube-apiserver-${K8S_VERSION}" && "$go" list -m -f '{{.Dir}}' k8s.io/kubernetes)/build/pause/linux/pause.c"
    gcc -Os -static -o "$BIN/pause" "$pause_c"
    printf '%s\n' "$stamp" >"$BIN/.stamp"
}

# An OCI image holding one static binary, imported into the cluster's containerd.
load_static_image() {
    local ref="$1" binary="$2" name; name="$(basename "$binary")"
    if ctr_ images ls -q | grep -qxF "$ref"; then return; fi
    local archive="$BIN/${name}.image.tar"
    if [[ ! -f "$archive" || "$archive" -ot "$binary" ]]; then
        local work; work="$(mktemp -d)"
        umoci init --layout "$work/oci" >&2
        umoci new --image "$work/oci:img" >&2
        umoci unpack --rootless --image "$work/oci:img" "$work/bundle" >&2
        install -m 0755 "$binary" "$work/bundle/rootfs/$name"
        umoci repack --image "$work/oci:img" "$work/bundle" >&2
        umoci config --image "$work/oci:img" --config.entrypoint "/$name" --config.user 65534 >&2
        skopeo copy -q "oci:$work/oci:img" "docker-archive:$archive.tmp:$ref" >&2
        mv -f "$archive.tmp" "$archive"
        rm -rf "$work"
    fi
    ctr_ images import "$archive" >&2
}

# ---- host snapshot -------------------------------------------------------------------
# What down restores and check-host compares. Each file is one sorted list; ours_re
# tells a difference the cluster made from one another tenant of the host made.
our_pids() {  # processes of this cluster: started from its folders or serving its socket
    local p cmd
    for p in /proc/[0-9]*; do
        cmd="$(tr '\0' ' ' 2>/dev/null <"$p/cmdline")" || continue
        case "$cmd" in
            *"$STATE/"*|*"$BIN/"*|*"-address $SOCK"*) printf '%s\n' "${p#/proc/}" ;;
        esac
    done
    local cg
    for cg in /sys/fs/cgroup/kubepods* /sys/fs/cgroup/*/kubepods*; do
        [[ -d "$cg" ]] && find "$cg" -name cgroup.procs -exec cat {} + 2>/dev/null
    done
    return 0
}

snapshot() {
    local out="$1" s p
    local -
    set +e +o pipefail  # an empty list (grep finding nothing) is a fine answer here
    mkdir -p "$out"
    ip -o link show | awk -F': ' '{print $2}' | sed 's/@.*//' | sort >"$out/links"
    { ip -4 -o addr show; ip -4 route show table all; } 2>/dev/null | sed 's/ \+/ /g' | sort >"$out/addrs"
    for s in iptables ip6tables; do
        command -v "$s-save" >/dev/null || continue
        "$s-save" 2>/dev/null | grep -v '^#' | sed -e 's/ \[[0-9]*:[0-9]*\]$//' -e "s/^/$s /"
    done | sort >"$out/iptables"
    # iptables-nft makes the nft tables it needs on first use; a host without any had none.
    nft list tables 2>/dev/null | sort >"$out/nft-tables" || true
    nfacct list 2>/dev/null | sed -n 's/.*name = \([^ ;]*\).*/\1/p' | sort >"$out/nfacct" || true
    awk '{print $2}' /proc/mounts | sort >"$out/mounts"
    ip netns list 2>/dev/null | awk '{print $1}' | sort >"$out/netns"
    # kubepods trees: /sys/fs/cgroup/kubepods* on cgroup v2, under each controller on v1.
    find /sys/fs/cgroup -mindepth 1 -maxdepth 2 -type d -name 'kubepods*' 2>/dev/null | sort >"$out/cgroups"
    for s in "${SYSCTLS[@]}"; do
        printf '%s=%s\n' "$s" "$(sysctl -n "$s" 2>/dev/null || echo absent)"
    done >"$out/sysctls"
    for p in "${HOST_PATHS[@]}"; do
        if [[ -e "$p" ]]; then echo "$p exists"; else echo "$p absent"; fi
    done >"$out/paths"
    our_pids | sort -u | while read -r p; do
        printf '%s %s\n' "$p" "$(cat "/proc/$p/comm" 2>/dev/null)"
    done >"$out/procs"
    return 0
}

ours_re() {  # ours_re FILE: lines of FILE's diff that the cluster accounts for
    case "$1" in
        links) echo "^(${BRIDGE}|veth[0-9a-f]{8})\$" ;;
        addrs) echo "${BRIDGE}|10\\.244\\.|10\\.96\\." ;;
        iptables) echo "KUBE-|CNI-|${BRIDGE}|10\\.244\\.|10\\.96\\." ;;
        nft-tables) echo "^table ip6? (filter|nat|mangle|raw)\$" ;;
        mounts) echo "^(${STATE}|/run/containerd|/run/netns(/cni-|\$)|/var/run/netns/cni-|/var/lib/kubelet)" ;;
        netns) echo "^cni-" ;;
        nfacct) echo "_pkts\$" ;;
        *) echo "." ;;  # cgroups, sysctls, paths, procs: all the cluster's
    esac
}

check_host() {  # check_host [BEFORE]: 0 when the host shows nothing the cluster left
    local before="${1:-$BEFORE}" now f bad=0 line
    local -
    set +e +o pipefail
    [[ -d "$before" ]] || { log "no snapshot in $before to compare with"; return 0; }
    now="$(mktemp -d)"
    snapshot "$now"
    for f in links addrs iptables nft-tables nfacct mounts netns cgroups sysctls paths procs; do
        [[ -f "$before/$f" ]] || continue
        local diff_lines ours
        diff_lines="$(diff "$before/$f" "$now/$f" | grep -E '^[<>]' || true)"
        [[ -n "$diff_lines" ]] || continue
        ours="$(grep -E -- "$(ours_re "$f")" <<<"$(sed 's/^[<>] //' <<<"$diff_lines")" || true)"
        if [[ -n "$ours" ]]; then
            log "host differs from the snapshot in $f (< before, > now):"; bad=1
        else
            log "note: $f changed, not by the cluster (another tenant of this host?):"
        fi
        while IFS= read -r line; do printf '    %s\n' "$line" >&2; done <<<"$diff_lines"
    done
    rm -rf "$now"
    ((bad == 0)) && log "host: as the snapshot found it (processes, mounts, iptables, links, netns, sysctls, cgroups, paths)"
    return "$bad"
}

# ---- PKI -----------------------------------------------------------------------------
pki() {
    local d="$STATE/pki"
    [[ "$(cat "$d/.version" 2>/dev/null)" == "$PKI_VERSION" ]] && return
    rm -rf "$d"
    mkdir -p "$d"
    (
        cd "$d"
        umask 077
        ca() {  # ca NAME CN
            openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
                -keyout "$1.key" -out "$1.crt" -days 3650 -subj "/CN=$2" \
                -addext "basicConstraints=critical,CA:TRUE" \
                -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" 2>/dev/null
        }
        cert() {  # cert NAME CA SUBJECT EKU [SAN]
            local ext="basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=$4"
            [[ -n "${5:-}" ]] && ext+=$'\n'"subjectAltName=$5"
            printf '%s\n' "$ext" >"$1.ext"
            openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
                -keyout "$1.key" -out "$1.csr" -subj "$3" 2>/dev/null
            openssl x509 -req -in "$1.csr" -CA "$2.crt" -CAkey "$2.key" -CAcreateserial \
                -days 3650 -extfile "$1.ext" -out "$1.crt" 2>/dev/null
        }
        ca ca jobqueue-cluster-ca
        ca etcd-ca jobqueue-etcd-ca
        ca front-proxy-ca jobqueue-front-proxy-ca
        cert etcd-server etcd-ca "/CN=etcd" serverAuth,clientAuth "IP:127.0.0.1,DNS:localhost"
        cert apiserver-etcd-client etcd-ca "/CN=kube-apiserver-etcd-client" clientAuth
        cert apiserver ca "/CN=kube-apiserver" serverAuth \
            "IP:${NODE_IP},IP:${API_SERVICE_IP},IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
        cert apiserver-kubelet-client ca "/O=system:masters/CN=kube-apiserver-kubelet-client" clientAuth
        cert admin ca "/O=system:masters/CN=jobqueue-admin" clientAuth
        cert controller-manager ca "/CN=system:kube-controller-manager" clientAuth
        cert scheduler ca "/CN=system:kube-scheduler" clientAuth
        cert kube-proxy ca "/CN=system:kube-proxy" clientAuth
        cert kubelet-client ca "/O=system:nodes/CN=system:node:${NODE_NAME}" clientAuth
        cert kubelet-serving ca "/O=system:nodes/CN=system:node:${NODE_NAME}" serverAuth \
            "IP:${NODE_IP},DNS:${NODE_NAME}"
        cert front-proxy-client front-proxy-ca "/CN=front-proxy-client" clientAuth
        openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:prime256v1 -out sa.key 2>/dev/null
        openssl pkey -in sa.key -pubout -out sa.pub 2>/dev/null
        rm -f ./*.csr ./*.ext ./*.srl
        chmod 0644 ./*.crt sa.pub
    )
    local who
    for who in admin controller-manager scheduler kube-proxy kubelet-client; do
        kubeconfig_for "$who" >"$STATE/$who.kubeconfig"
    done
    echo "$PKI_VERSION" >"$d/.version"
}

kubeconfig_for() {
    cat <<EOF
apiVersion: v1
kind: Config
clusters:
- name: jobqueue
  cluster:
    server: https://${NODE_IP}:${API_PORT}
    certificate-authority: ${STATE}/pki/ca.crt
users:
- name: $1
  user:
    client-certificate: ${STATE}/pki/$1.crt
    client-key: ${STATE}/pki/$1.key
contexts:
- name: jobqueue
  context: {cluster: jobqueue, user: $1}
current-context: jobqueue
EOF
}

# ---- processes -----------------------------------------------------------------------
running() { [[ -f "$STATE/run/$1.pid" ]] && kill -0 "$(cat "$STATE/run/$1.pid")" 2>/dev/null; }

start() {  # start NAME ARGV...
    local name="$1"; shift
    running "$name" && return
    mkdir -p "$STATE/run" "$STATE/logs"
    # setsid: its own session, so a test runner's process-group kill leaves it be
    # and `down` stops it by pid.
    # 9>&-: the lock up holds is not the component's to keep.
    setsid "$@" >>"$STATE/logs/$name.log" 2>&1 </dev/null 9>&- &
    echo $! >"$STATE/run/$name.pid"
    log "started $name (pid $!)"
}

wait_for() {  # wait_for WHAT SECONDS CMD...
    local what="$1" limit="$2"; shift 2
    local deadline=$((SECONDS + limit))
    until "$@" >/dev/null 2>&1; do
        ((SECONDS < deadline)) || die "$what not up after ${limit}s (logs: $STATE/logs)"
        sleep 0.5
    done
}

install_config() {  # install_config TEMPLATE DEST: rendered, replaced only when it changed
    # (kube-proxy exits when its config file is written: an idempotent up must not touch it)
    render "$1" >"$2.tmp"
    if cmp -s "$2.tmp" "$2"; then rm -f "$2.tmp"; else mv -f "$2.tmp" "$2"; fi
}

render() {  # render TEMPLATE: hack/cluster/TEMPLATE with @VARS@ substituted
    sed -e "s#@STATE@#${STATE}#g" -e "s#@NODE_IP@#${NODE_IP}#g" -e "s#@NODE_NAME@#${NODE_NAME}#g" \
        -e "s#@POD_CIDR@#${POD_CIDR}#g" -e "s#@DNS_IP@#${DNS_IP}#g" -e "s#@BRIDGE@#${BRIDGE}#g" \
        -e "s#@PAUSE_IMAGE@#${PAUSE_IMAGE}#g" -e "s#@COREDNS_IMAGE@#${COREDNS_IMAGE}#g" \
        -e "s#@SERVICE_CIDR@#${SERVICE_CIDR}#g" -e "s#@API_PORT@#${API_PORT}#g" "$HERE/cluster/$1"
}

network_up() {
    if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
        ip link add "$BRIDGE" type bridge
        ip addr add "${NODE_IP}/24" dev "$BRIDGE"
    fi
    ip link set "$BRIDGE" up
    sysctl -qw net.ipv4.ip_forward=1
    # Service traffic between two pods on the bridge must pass iptables (DNAT replies).
    [[ -e /proc/sys/net/bridge/bridge-nf-call-iptables ]] || modprobe br_netfilter 2>/dev/null || true
    [[ -e /proc/sys/net/bridge/bridge-nf-call-iptables ]] && sysctl -qw net.bridge.bridge-nf-call-iptables=1
    mkdir -p "$STATE/cni/net.d" "$STATE/cni/ipam"
    install_config 10-jobqueue.conflist "$STATE/cni/net.d/10-jobqueue.conflist"
}

healthy() {  # every component answers on its health endpoint, and the node is Ready
    local name
    for name in "${COMPONENTS[@]}"; do running "$name" || return 1; done
    node_ready && coredns_answers
}

up() {
    local t0=$SECONDS
    mkdir -p "$STATE"
    exec 9>"$STATE/.lock"
    flock -w 900 9 || die "another hack/cluster.sh holds $STATE/.lock"
    if [[ -d "$BEFORE" ]] && healthy 2>/dev/null; then
        log "already up (${SECONDS}s); export KUBECONFIG=$STATE/admin.kubeconfig"
        return
    fi
    phase packages; ensure_packages
    phase binaries; ensure_testbin; build_components
    local tb="$TESTBIN"
    # The first up after a down (or ever) records the host as it is now.
    [[ -d "$BEFORE" ]] || { snapshot "$BEFORE.tmp" && mv "$BEFORE.tmp" "$BEFORE"; }
    phase pki; pki
    phase network; network_up
    local p="$STATE/pki"

    phase control-plane
    start etcd "$tb/etcd" --name "$NODE_NAME" --data-dir "$STATE/etcd" \
        --listen-client-urls "https://127.0.0.1:${ETCD_PORT}" \
        --advertise-client-urls "https://127.0.0.1:${ETCD_PORT}" \
        --listen-peer-urls http://127.0.0.1:2480 --initial-advertise-peer-urls http://127.0.0.1:2480 \
        --initial-cluster "$NODE_NAME=http://127.0.0.1:2480" \
        --cert-file "$p/etcd-server.crt" --key-file "$p/etcd-server.key" \
        --client-cert-auth --trusted-ca-file "$p/etcd-ca.crt" \
        --listen-metrics-urls http://127.0.0.1:2481 \
        --unsafe-no-fsync=true --log-level warn
    start kube-apiserver "$tb/kube-apiserver" --etcd-servers "https://127.0.0.1:${ETCD_PORT}" \
        --etcd-cafile "$p/etcd-ca.crt" --etcd-certfile "$p/apiserver-etcd-client.crt" \
        --etcd-keyfile "$p/apiserver-etcd-client.key" \
        --advertise-address "$NODE_IP" --bind-address 0.0.0.0 --secure-port "$API_PORT" \
        --tls-cert-file "$p/apiserver.crt" --tls-private-key-file "$p/apiserver.key" \
        --client-ca-file "$p/ca.crt" --authorization-mode Node,RBAC \
        --anonymous-auth=true --enable-admission-plugins NodeRestriction \
        --kubelet-client-certificate "$p/apiserver-kubelet-client.crt" \
        --kubelet-client-key "$p/apiserver-kubelet-client.key" \
        --kubelet-certificate-authority "$p/ca.crt" \
        --kubelet-preferred-address-types InternalIP \
        --service-cluster-ip-range "$SERVICE_CIDR" --service-node-port-range 30000-32767 \
        --service-account-issuer https://kubernetes.default.svc.cluster.local \
        --service-account-key-file "$p/sa.pub" --service-account-signing-key-file "$p/sa.key" \
        --requestheader-client-ca-file "$p/front-proxy-ca.crt" \
        --requestheader-allowed-names front-proxy-client \
        --requestheader-username-headers X-Remote-User --requestheader-group-headers X-Remote-Group \
        --requestheader-extra-headers-prefix X-Remote-Extra- \
        --proxy-client-cert-file "$p/front-proxy-client.crt" --proxy-client-key-file "$p/front-proxy-client.key" \
        --enable-aggregator-routing=true --allow-privileged=true --v=1
    mkdir -p "$STATE/containerd"
    install_config containerd.toml "$STATE/containerd/config.toml"
    start containerd containerd --config "$STATE/containerd/config.toml"
    wait_for kube-apiserver 120 kubectl_ get --raw /readyz
    start kube-controller-manager "$BIN/kube-controller-manager" \
        --kubeconfig "$STATE/controller-manager.kubeconfig" \
        --authentication-kubeconfig "$STATE/controller-manager.kubeconfig" \
        --authorization-kubeconfig "$STATE/controller-manager.kubeconfig" \
        --bind-address 127.0.0.1 --leader-elect=false --use-service-account-credentials=true \
        --service-account-private-key-file "$p/sa.key" --root-ca-file "$p/ca.crt" \
        --cluster-signing-cert-file "$p/ca.crt" --cluster-signing-key-file "$p/ca.key" \
        --service-cluster-ip-range "$SERVICE_CIDR" \
        --controllers '*,-nodeipam,-cloud-node-lifecycle,-service-lb-controller,-node-route-controller' \
        --horizontal-pod-autoscaler-sync-period 5s --v=1
    start kube-scheduler "$BIN/kube-scheduler" --kubeconfig "$STATE/scheduler.kubeconfig" \
        --authentication-kubeconfig "$STATE/scheduler.kubeconfig" \
        --authorization-kubeconfig "$STATE/scheduler.kubeconfig" \
        --bind-address 127.0.0.1 --leader-elect=false --v=1
    # CoreDNS's objects now: its pod is scheduled the moment the node is Ready.
    render coredns.yaml | kubectl_ apply -f - >&2

    phase node
    wait_for containerd 30 ctr --address "$SOCK" version
    load_static_image "$PAUSE_IMAGE" "$BIN/pause"
    load_static_image "$COREDNS_IMAGE" "$BIN/coredns"
    install_config kubelet.yaml "$STATE/kubelet.yaml"
    start kubelet "$BIN/kubelet" --config "$STATE/kubelet.yaml" \
        --kubeconfig "$STATE/kubelet-client.kubeconfig" --node-ip "$NODE_IP" \
        --hostname-override "$NODE_NAME" --root-dir "$STATE/kubelet" --v=1
    install_config kube-proxy.yaml "$STATE/kube-proxy.yaml"
    start kube-proxy "$BIN/kube-proxy" --config "$STATE/kube-proxy.yaml" \
        --hostname-override "$NODE_NAME" --v=1
    wait_for "node Ready" 120 node_ready
    wait_for kube-proxy 60 curl -fsS --max-time 2 http://127.0.0.1:10256/healthz

    phase coredns
    kubectl_ -n kube-system rollout status deployment/coredns --timeout=120s >&2
    wait_for "cluster DNS through the kube-dns ClusterIP" 60 coredns_answers
    if [[ "${JOBQUEUE_CLUSTER_SMOKE:-1}" != 0 ]]; then phase smoke; smoke; fi
    phase ""
    log "up in $((SECONDS - t0))s; export KUBECONFIG=$STATE/admin.kubeconfig"
}

node_ready() {
    [[ "$(kubectl_ get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" == "True" ]]
}

# kubernetes.default.svc.cluster.local asked of the kube-dns ClusterIP from the host:
# kube-proxy's DNAT to the CoreDNS pod, and CoreDNS's own watch of the API through the
# kubernetes Service (pod -> host) both have to work for the answer to be 10.96.0.1.
coredns_answers() {
    [[ "$(dns_query "$DNS_IP" kubernetes.default.svc.cluster.local)" == "$API_SERVICE_IP" ]]
}

dns_query() {  # dns_query SERVER NAME: the first A record, over UDP
    python3 - "$1" "$2" <<'EOF'
import socket, struct, sys
server, name = sys.argv[1], sys.argv[2]
q = struct.pack(">HHHHHH", 0x4A51, 0x0100, 1, 0, 0, 0)
q += b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0" + struct.pack(">HH", 1, 1)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(2)
s.sendto(q, (server, 53))
r = s.recv(4096)
an = struct.unpack(">H", r[6:8])[0]
i = len(q)
for _ in range(an):
    i += 2 if r[i] & 0xC0 == 0xC0 else r.index(b"\0", i) + 1 - i
    rtype, _cls, _ttl, rdlen = struct.unpack(">HHIH", r[i:i + 10])
    i += 10
    if rtype == 1:
        print(socket.inet_ntoa(r[i:i + 4]))
        break
    i += rdlen
EOF
}

# ---- smoke test ----------------------------------------------------------------------
# A pod from the CoreDNS image whose API client is pointed at the node address itself
# (pod -> host), serving /health behind a NodePort Service: reached from the host
# through the ClusterIP, the NodePort and kubectl port-forward.
smoke() {
    local ns=kube-system
    render smoke.yaml | kubectl_ apply -f - >&2
    kubectl_ -n "$ns" rollout status deployment/cluster-smoke --timeout=120s >&2
    local ip port
    ip="$(kubectl_ -n "$ns" get service cluster-smoke -o jsonpath='{.spec.clusterIP}')"
    port="$(kubectl_ -n "$ns" get service cluster-smoke -o jsonpath='{.spec.ports[0].nodePort}')"
    wait_for "smoke pod via ClusterIP $ip" 30 curl -fsS --max-time 2 "http://$ip/health"
    wait_for "smoke pod via NodePort $NODE_IP:$port" 30 curl -fsS --max-time 2 "http://$NODE_IP:$port/health"
    local pf_log; pf_log="$(mktemp)"
    "$TESTBIN/kubectl" --kubeconfig "$STATE/admin.kubeconfig" -n "$ns" \
        port-forward service/cluster-smoke 18081:80 >"$pf_log" 2>&1 9>&- &
    local pf=$!
    local ok=0 _
    for _ in $(seq 40); do
        curl -fsS --max-time 2 http://127.0.0.1:18081/health >/dev/null 2>&1 && { ok=1; break; }
        sleep 0.25
    done
    kill "$pf" 2>/dev/null || true
    wait "$pf" 2>/dev/null || true
    ((ok)) || { cat "$pf_log" >&2; rm -f "$pf_log"; die "kubectl port-forward to the smoke pod failed"; }
    rm -f "$pf_log"
    kubectl_ -n "$ns" delete --wait=false -f <(render smoke.yaml) >/dev/null
    log "smoke: pod Ready with its API client on ${NODE_IP}:${API_PORT} (pod -> host); /health via ClusterIP ${ip}, NodePort ${NODE_IP}:${port} and port-forward"
}

# ---- down ----------------------------------------------------------------------------
stop_pids() {  # stop_pids NAME...: SIGTERM to all at once, SIGKILL to any left after 10 s
    local name pid pids=() _ t=$SECONDS
    for name in "$@"; do
        [[ -f "$STATE/run/$name.pid" ]] || continue
        pid="$(cat "$STATE/run/$name.pid")"
        kill "$pid" 2>/dev/null && pids+=("$pid")
        rm -f "$STATE/run/$name.pid"
    done
    ((${#pids[@]})) || return 0
    alive() { local p; for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && return 0; done; return 1; }
    for _ in $(seq 100); do alive || break; sleep 0.1; done
    for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
    log "stopped $* in $((SECONDS - t))s"
}

kill_leftovers() {  # every process of ours still alive (shims, containers): SIGKILL by pid
    local pid _
    for _ in 1 2 3; do
        local pids; pids="$(our_pids | sort -u | grep -vx "$$" || true)"
        [[ -n "$pids" ]] || return 0
        for pid in $pids; do kill -9 "$pid" 2>/dev/null || true; done
        sleep 0.5
    done
}

unmount_ours() {
    local re _ m
    re="$(ours_re mounts)"
    for _ in 1 2 3; do
        local mounts
        mounts="$(awk '{print $2}' /proc/mounts | grep -E "$re" | grep -vxF -f "$BEFORE/mounts" | sort -ru || true)"
        [[ -n "$mounts" ]] || return 0
        while read -r m; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; done <<<"$mounts"
    done
}

clean_iptables() {  # drop kube-proxy's, kubelet's and the CNI's chains and the rules using them
    local fam table dump
    for fam in iptables ip6tables; do
        command -v "$fam-save" >/dev/null || continue
        for table in filter nat mangle raw; do
            dump="$("$fam-save" -t "$table" 2>/dev/null)" || continue
            grep -qE '(KUBE|CNI)-' <<<"$dump" || continue
            grep -vE '^:(KUBE|CNI)-|^-A (KUBE|CNI)-|-[jg] (KUBE|CNI)-' <<<"$dump" | "$fam-restore" -T "$table"
        done
    done
    # Tables iptables-nft created for kube-proxy and the CNI, now holding only empty base
    # chains, go too (the host had none of them).
    local fam_table
    while read -r fam_table; do
        [[ -n "$fam_table" ]] || continue
        grep -qxF "$fam_table" "$BEFORE/nft-tables" 2>/dev/null && continue
        [[ -f "$BEFORE/nft-tables" ]] || continue
        if ! nft list "$fam_table" 2>/dev/null | grep -qvE '^\s*(table|chain|type|policy|\}|$)'; then
            nft delete ${fam_table} 2>/dev/null || true
        fi
    done < <(nft list tables 2>/dev/null | grep -E '^table ip6? (filter|nat|mangle|raw)$')
    local c
    for c in $(nfacct list 2>/dev/null | sed -n 's/.*name = \([^ ;]*_pkts\).*/\1/p'); do
        grep -qxF "$c" "$BEFORE/nfacct" 2>/dev/null || nfacct delete "$c" >/dev/null 2>&1 || true
    done
    conntrack -D -s "$POD_CIDR" >/dev/null 2>&1 || true
    conntrack -D -d "$SERVICE_CIDR" >/dev/null 2>&1 || true
}

remove_cgroups() {  # kubelet's kubepods trees (with cgroupfs, under every controller)
    local _ root
    for _ in 1 2 3 4 5; do
        local left=0
        for root in /sys/fs/cgroup/kubepods* /sys/fs/cgroup/*/kubepods*; do
            [[ -d "$root" ]] || continue
            grep -qxF "$root" "$BEFORE/cgroups" 2>/dev/null && continue
            find "$root" -depth -type d -exec rmdir {} \; 2>/dev/null || true
            [[ -d "$root" ]] && left=1
        done
        ((left)) || return 0
        sleep 0.5
    done
    log "cgroups still busy: $(ls -d /sys/fs/cgroup/kubepods* /sys/fs/cgroup/*/kubepods* 2>/dev/null | tr '\n' ' ')"
}

down() {
    local t0=$SECONDS
    [[ -d "$STATE" ]] || { log "nothing to do"; return 0; }
    exec 9>"$STATE/.lock"
    flock -w 900 9 || die "another hack/cluster.sh holds $STATE/.lock"
    local snapshot=1
    if [[ ! -d "$BEFORE" ]]; then
        # Nothing recorded (down twice, or up died before its snapshot): clean up
        # whatever of ours is there against an empty baseline, keep the fixed paths.
        snapshot=0
        log "no snapshot from up: removing whatever of the cluster is left"
        mkdir -p "$BEFORE"
        touch "$BEFORE"/{mounts,netns,links,cgroups,nfacct}
    fi
    phase processes
    stop_pids kubelet kube-proxy
    if running containerd; then
        local c
        for c in $(ctr_ tasks ls -q 2>/dev/null); do ctr_ tasks kill -s KILL "$c" >/dev/null 2>&1 || true; done
        sleep 0.5
        for c in $(ctr_ tasks ls -q 2>/dev/null); do ctr_ tasks rm -f "$c" >/dev/null 2>&1 || true; done
        for c in $(ctr_ containers ls -q 2>/dev/null); do ctr_ containers rm "$c" >/dev/null 2>&1 || true; done
    fi
    stop_pids containerd kube-scheduler kube-controller-manager
    stop_pids kube-apiserver
    stop_pids etcd
    kill_leftovers

    phase mounts
    unmount_ours
    phase network
    local ns
    for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep '^cni-' || true); do
        grep -qxF "$ns" "$BEFORE/netns" 2>/dev/null || ip netns del "$ns" 2>/dev/null || true
    done
    local link
    for link in $(ip -o link show | awk -F': ' '{print $2}' | sed 's/@.*//' | grep -E "$(ours_re links)" || true); do
        grep -qxF "$link" "$BEFORE/links" 2>/dev/null || ip link del "$link" 2>/dev/null || true
    done
    clean_iptables

    phase host
    remove_cgroups
    if [[ -f "$BEFORE/sysctls" ]]; then
        local line
        while IFS= read -r line; do
            [[ "${line#*=}" == absent ]] && continue
            [[ "$(sysctl -n "${line%%=*}" 2>/dev/null)" == "${line#*=}" ]] || sysctl -qw "$line" 2>/dev/null || true
        done <"$BEFORE/sysctls"
    fi
    local path
    for path in "${HOST_PATHS[@]}"; do
        grep -qxF "$path absent" "$BEFORE/paths" 2>/dev/null && rm -rf "$path"
    done
    # Keep certificates and binaries (a faster next up); drop the data.
    rm -rf "$STATE/etcd" "$STATE/kubelet" "$STATE/kubelet-logs" "$STATE/containerd" "$STATE/cni" "$STATE/run"
    if [[ -d "$STATE/logs" ]]; then rm -rf "$STATE/logs.old"; mv "$STATE/logs" "$STATE/logs.old"; fi
    phase ""
    log "down in $((SECONDS - t0))s"
    local rc=0
    if ((snapshot)); then
        check_host "$BEFORE" || rc=1
        mkdir -p "$STATE/logs.old"
        rm -rf "$STATE/logs.old/host-before"
        mv "$BEFORE" "$STATE/logs.old/host-before"
    else
        rm -rf "$BEFORE"
    fi
    return "$rc"
}

# ---- status --------------------------------------------------------------------------
status() {
    local ok=0 name state
    probe() {  # probe NAME CMD...: one line per component
        local name="$1"; shift
        if ! running "$name"; then state="stopped"; ok=1
        elif "$@" >/dev/null 2>&1; then state="running, healthy (pid $(cat "$STATE/run/$name.pid"))"
        else state="running, NOT healthy (pid $(cat "$STATE/run/$name.pid"))"; ok=1
        fi
        printf '%-24s %s\n' "$name" "$state"
    }
    local p="$STATE/pki" k=(curl -fsS --max-time 3)
    probe etcd "${k[@]}" http://127.0.0.1:2481/health
    probe kube-apiserver kubectl_ get --raw /readyz
    probe kube-controller-manager "${k[@]}" -k https://127.0.0.1:10257/healthz
    probe kube-scheduler "${k[@]}" -k https://127.0.0.1:10259/healthz
    probe containerd ctr --address "$SOCK" version
    probe kubelet "${k[@]}" http://127.0.0.1:10248/healthz
    probe kube-proxy "${k[@]}" http://127.0.0.1:10256/healthz
    # Only ask 10.96.0.10 when kube-proxy routes it: otherwise the query would leave the host.
    if running kube-proxy && coredns_answers 2>/dev/null; then printf '%-24s %s\n' coredns "answers on ${DNS_IP}:53"
    else printf '%-24s %s\n' coredns "NOT answering on ${DNS_IP}:53"; ok=1; fi
    kubectl_ get nodes -o wide 2>/dev/null || return 1
    ((ok == 0)) && node_ready
}

usage() { sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
[[ $# -ge 1 ]] || usage
case "$1" in
    up|down|status|build|smoke|snapshot|check-host)
        [[ $(id -u) == 0 ]] || die "needs root (kubelet, containerd and the CNI bridge do)" ;;
esac
case "$1" in
    up) up ;;
    build) t0=$SECONDS; ensure_packages; ensure_testbin; build_components; log "binaries ready in $((SECONDS - t0))s: $BIN" ;;
    down) down ;;
    status) status ;;
    kubeconfig) printf '%s\n' "$STATE/admin.kubeconfig" ;;
    env) printf 'KUBECONFIG=%s\nCONTAINERD_ADDRESS=%s\nNODE_IP=%s\n' "$STATE/admin.kubeconfig" "$SOCK" "$NODE_IP" ;;
    smoke) smoke ;;
    snapshot) [[ $# == 2 ]] || usage; snapshot "$2" ;;
    check-host) check_host "${2:-$BEFORE}" ;;
    *) usage ;;
esac
