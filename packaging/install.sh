#!/bin/sh
# k1s installer, in the style of k3s's install.sh: installs the k1s binary, a systemd unit
# (k1s.service, or k1s-agent.service for an agent), k1s-killall.sh and k1s-uninstall.sh,
# then enables and starts the service when systemd runs.
#
# There is no download site: give the binary with INSTALL_K1S_BIN=/path/to/k1s (e.g. from
# scripts/build-arm), or put it in INSTALL_K1S_BIN_DIR first and set
# INSTALL_K1S_SKIP_DOWNLOAD=true.
#
# Usage: [ENV=...] sh install.sh [k1s flags...]
#   e.g. INSTALL_K1S_BIN=./k1s sh install.sh --disable servicelb
#        INSTALL_K1S_BIN=./k1s K1S_URL=https://pi1:6443 K1S_TOKEN=... sh install.sh
#
# Environment:
#   INSTALL_K1S_BIN          the k1s binary to install
#   INSTALL_K1S_SKIP_DOWNLOAD  true: use the k1s already in INSTALL_K1S_BIN_DIR
#   INSTALL_K1S_EXEC         the command the service runs: `server` (default) or `agent`
#                            (default when K1S_URL is set), then flags; flags alone mean
#                            `server FLAGS`; the installer's own arguments are added
#   K1S_URL, K1S_TOKEN       the server an agent joins and its token; every K1S_* variable
#                            set at install time goes into the unit's environment file
#   INSTALL_K1S_NAME         service name (default k1s, or k1s-agent for an agent)
#   INSTALL_K1S_BIN_DIR      where the binary and scripts go (default /usr/local/bin)
#   INSTALL_K1S_SYSTEMD_DIR  where the unit goes (default /etc/systemd/system)
#   INSTALL_K1S_CONFIG_DIR   config.yaml and the admin kubeconfig (default /etc/k1s)
#   INSTALL_K1S_DATA_DIR     the data dir (default /var/lib/k1s)
#   INSTALL_K1S_POD_LOG_DIR  container logs (default /var/log/pods)
#   INSTALL_K1S_SKIP_ENABLE  true: do not enable (nor start) the service
#   INSTALL_K1S_SKIP_START   true: do not start the service
#   INSTALL_K1S_DESTDIR      write every file under this folder, with the paths inside them
#                            unchanged (for building packages); nothing is enabled or started
set -e
set -o noglob

info() { echo "[INFO]  $*"; }
warn() { echo "[WARN]  $*" >&2; }
fatal() {
    echo "[ERROR] $*" >&2
    exit 1
}

# Quotes each argument for a systemd ExecStart line, one per line: single quotes, with
# backslash, quote, % and $ escaped as systemd reads them.
quote_indent() {
    for arg in "$@"; do
        printf ' \\\n'
        esc=$(printf '%s' "$arg" | sed -e 's/\\/\\\\/g' -e "s/'/\\\\'/g" -e 's/%/%%/g' -e 's/\$/$$/g')
        printf "    '%s'" "$esc"
    done
}

setup_env() {
    if [ -z "${INSTALL_K1S_EXEC}" ] || [ "${INSTALL_K1S_EXEC#-}" != "${INSTALL_K1S_EXEC}" ]; then
        if [ -z "${K1S_URL}" ]; then
            CMD_K1S=server
        else
            [ -n "${K1S_TOKEN}" ] || fatal "K1S_URL is set, so an agent is installed: it needs K1S_TOKEN too"
            CMD_K1S=agent
        fi
    else
        CMD_K1S=$(echo "${INSTALL_K1S_EXEC}" | awk '{print $1}')
        INSTALL_K1S_EXEC=$(echo "${INSTALL_K1S_EXEC}" | cut -s -d ' ' -f 2-)
    fi
    case "${CMD_K1S}" in
    server | agent) ;;
    *) fatal "INSTALL_K1S_EXEC must start with server or agent, not ${CMD_K1S}" ;;
    esac
    if [ "${CMD_K1S}" = agent ] && [ -z "${K1S_URL}" ]; then
        fatal "an agent needs K1S_URL (https://SERVER:6443) and K1S_TOKEN"
    fi

    if [ -n "${INSTALL_K1S_NAME}" ]; then
        SYSTEM_NAME=k1s-$(echo "${INSTALL_K1S_NAME}" | sed 's/^k1s-//')
        [ "${INSTALL_K1S_NAME}" = k1s ] && SYSTEM_NAME=k1s
    elif [ "${CMD_K1S}" = server ]; then
        SYSTEM_NAME=k1s
    else
        SYSTEM_NAME=k1s-${CMD_K1S}
    fi
    echo "${SYSTEM_NAME}" | grep -qE '^[A-Za-z0-9:_.-]+$' || fatal "invalid service name ${SYSTEM_NAME}"

    BIN_DIR=${INSTALL_K1S_BIN_DIR:-/usr/local/bin}
    SYSTEMD_DIR=${INSTALL_K1S_SYSTEMD_DIR:-/etc/systemd/system}
    CONFIG_DIR=${INSTALL_K1S_CONFIG_DIR:-/etc/k1s}
    DATA_DIR=${INSTALL_K1S_DATA_DIR:-/var/lib/k1s}
    POD_LOG_DIR=${INSTALL_K1S_POD_LOG_DIR:-/var/log/pods}
    DESTDIR=${INSTALL_K1S_DESTDIR:-}
    for d in "${BIN_DIR}" "${SYSTEMD_DIR}" "${CONFIG_DIR}" "${DATA_DIR}" "${POD_LOG_DIR}"; do
        case "$d" in
        /*) ;;
        *) fatal "install folders must be absolute paths, not $d" ;;
        esac
    done

    SERVICE_K1S=${SYSTEM_NAME}.service
    FILE_K1S_SERVICE=${SYSTEMD_DIR}/${SERVICE_K1S}
    FILE_K1S_ENV=${SYSTEMD_DIR}/${SERVICE_K1S}.env
    KILLALL_K1S_SH=${BIN_DIR}/k1s-killall.sh
    if [ "${SYSTEM_NAME}" = k1s ]; then
        UNINSTALL_K1S_SH=${BIN_DIR}/k1s-uninstall.sh
    else
        UNINSTALL_K1S_SH=${BIN_DIR}/${SYSTEM_NAME}-uninstall.sh
    fi

    SUDO=sudo
    [ "$(id -u)" -eq 0 ] && SUDO=
    if [ -n "${DESTDIR}" ] && [ -w "$(dirname "${DESTDIR}")" ]; then
        SUDO=
    fi
}

# Whether systemd runs this machine (not just installed: containers and chroots have
# systemctl without a running systemd).
systemd_running() {
    command -v systemctl >/dev/null 2>&1 || return 1
    state=$(systemctl is-system-running 2>/dev/null || true)
    case "${state}" in
    running | degraded | starting | initializing | maintenance) return 0 ;;
    *) return 1 ;;
    esac
}

install_binary() {
    ${SUDO} mkdir -p "${DESTDIR}${BIN_DIR}"
    if [ "${INSTALL_K1S_SKIP_DOWNLOAD}" = true ]; then
        [ -x "${DESTDIR}${BIN_DIR}/k1s" ] || fatal "INSTALL_K1S_SKIP_DOWNLOAD=true, but there is no ${DESTDIR}${BIN_DIR}/k1s"
        info "Skipping the copy: using ${BIN_DIR}/k1s"
    else
        [ -n "${INSTALL_K1S_BIN}" ] || fatal "k1s has no download site: set INSTALL_K1S_BIN=/path/to/k1s (or put k1s in ${BIN_DIR} and set INSTALL_K1S_SKIP_DOWNLOAD=true)"
        [ -f "${INSTALL_K1S_BIN}" ] || fatal "INSTALL_K1S_BIN=${INSTALL_K1S_BIN} is not a file"
        info "Installing k1s to ${BIN_DIR}/k1s"
        ${SUDO} cp "${INSTALL_K1S_BIN}" "${DESTDIR}${BIN_DIR}/k1s.tmp"
        ${SUDO} chmod 755 "${DESTDIR}${BIN_DIR}/k1s.tmp"
        ${SUDO} mv -f "${DESTDIR}${BIN_DIR}/k1s.tmp" "${DESTDIR}${BIN_DIR}/k1s"
    fi
    # A binary for another architecture, or one too old for the service it should run,
    # fails here instead of in a restart loop. Skipped for packages (another arch).
    if [ -z "${DESTDIR}" ]; then
        "${BIN_DIR}/k1s" --version >/dev/null 2>&1 || fatal "${BIN_DIR}/k1s does not run on this machine (another architecture?)"
        "${BIN_DIR}/k1s" "${CMD_K1S}" --help >/dev/null 2>&1 \
            || fatal "this k1s has no \`${CMD_K1S}\` command yet: it cannot run ${SERVICE_K1S}"
    fi
}

create_killall() {
    info "Creating killall script ${KILLALL_K1S_SH}"
    ${SUDO} tee "${DESTDIR}${KILLALL_K1S_SH}" >/dev/null <<EOF
#!/bin/sh
# Stops the k1s services, their containers, and removes k1s's mounts, pod network
# namespaces, bridge and veths, and nftables tables (k1s killall). Keeps the data.
[ \$(id -u) -eq 0 ] || exec sudo "\$0" "\$@"
if command -v systemctl >/dev/null 2>&1; then
    case "\$(systemctl is-system-running 2>/dev/null)" in
    running | degraded | starting | initializing | maintenance)
        for service in ${SYSTEMD_DIR}/k1s*.service; do
            [ -s "\$service" ] && systemctl stop "\$(basename "\$service")"
        done
        ;;
    esac
fi
if [ -f ${CONFIG_DIR}/config.yaml ]; then
    set -- --config ${CONFIG_DIR}/config.yaml "\$@"
fi
exec ${BIN_DIR}/k1s killall --data-dir ${DATA_DIR} "\$@"
EOF
    ${SUDO} chmod 755 "${DESTDIR}${KILLALL_K1S_SH}"
}

create_uninstall() {
    info "Creating uninstall script ${UNINSTALL_K1S_SH}"
    ${SUDO} tee "${DESTDIR}${UNINSTALL_K1S_SH}" >/dev/null <<EOF
#!/bin/sh
# Removes what install.sh installed for ${SERVICE_K1S}: the service, and (when no other k1s
# service is left) every container, mount, network namespace, interface and nftables
# table k1s made (k1s-killall.sh), its data, config, logs and the binary.
set -x
[ \$(id -u) -eq 0 ] || exec sudo "\$0" "\$@"
if [ -x ${KILLALL_K1S_SH} ]; then
    ${KILLALL_K1S_SH}
fi
if command -v systemctl >/dev/null 2>&1; then
    case "\$(systemctl is-system-running 2>/dev/null)" in
    running | degraded | starting | initializing | maintenance)
        systemctl disable ${SERVICE_K1S}
        systemctl reset-failed ${SERVICE_K1S}
        systemctl daemon-reload
        ;;
    esac
fi
rm -f ${FILE_K1S_SERVICE} ${FILE_K1S_ENV}
remove_uninstall() {
    rm -f ${UNINSTALL_K1S_SH}
}
trap remove_uninstall EXIT
for service in ${SYSTEMD_DIR}/k1s*.service; do
    if [ -s "\$service" ]; then
        set +x
        echo "another k1s service (\$service) remains: keeping the binary and the data"
        exit
    fi
done
rm -rf ${CONFIG_DIR} ${DATA_DIR} ${POD_LOG_DIR}
rm -f ${BIN_DIR}/k1s ${KILLALL_K1S_SH}
EOF
    ${SUDO} chmod 755 "${DESTDIR}${UNINSTALL_K1S_SH}"
}

create_env_file() {
    info "env: Creating environment file ${FILE_K1S_ENV}"
    ${SUDO} mkdir -p "${DESTDIR}${SYSTEMD_DIR}"
    ${SUDO} touch "${DESTDIR}${FILE_K1S_ENV}"
    ${SUDO} chmod 0600 "${DESTDIR}${FILE_K1S_ENV}"
    # The K1S_* settings given at install time (K1S_URL, K1S_TOKEN, …) and proxies, so
    # the service runs as the installer was asked; INSTALL_K1S_* configure only this script.
    env | grep -E '^K1S_' | ${SUDO} tee "${DESTDIR}${FILE_K1S_ENV}" >/dev/null || true
    env | grep -Ei '^(NO|HTTP|HTTPS)_PROXY=' | ${SUDO} tee -a "${DESTDIR}${FILE_K1S_ENV}" >/dev/null || true
}

create_service_file() {
    info "systemd: Creating service file ${FILE_K1S_SERVICE}"
    # Paths that are not the defaults become flags, so k1s and the scripts agree.
    set -- "$@"
    EXTRA=
    [ "${DATA_DIR}" != /var/lib/k1s ] && EXTRA="${EXTRA} --data-dir ${DATA_DIR}"
    [ "${POD_LOG_DIR}" != /var/log/pods ] && [ "${CMD_K1S}" = server ] && EXTRA="${EXTRA} --pod-log-dir ${POD_LOG_DIR}"
    if [ "${CONFIG_DIR}" != /etc/k1s ]; then
        EXTRA="${EXTRA} --config ${CONFIG_DIR}/config.yaml"
        [ "${CMD_K1S}" = server ] && EXTRA="${EXTRA} --write-kubeconfig ${CONFIG_DIR}/k1s.yaml"
    fi
    # shellcheck disable=SC2086
    EXEC_ARGS=$(quote_indent ${EXTRA} ${INSTALL_K1S_EXEC} "$@")
    ${SUDO} tee "${DESTDIR}${FILE_K1S_SERVICE}" >/dev/null <<EOF
[Unit]
Description=k1s: Kubernetes in one binary (${CMD_K1S})
Wants=network-online.target
After=network-online.target

[Install]
WantedBy=multi-user.target

[Service]
# k1s tells systemd (sd_notify READY=1) once its API server accepts connections.
Type=notify
EnvironmentFile=-/etc/default/%N
EnvironmentFile=-/etc/sysconfig/%N
EnvironmentFile=-${FILE_K1S_ENV}
# Only the k1s process is stopped: containers keep running across a restart, as with k3s;
# k1s-killall.sh stops them.
KillMode=process
Delegate=yes
User=root
LimitNOFILE=1048576
LimitNPROC=infinity
LimitCORE=infinity
TasksMax=infinity
TimeoutStartSec=0
Restart=always
RestartSec=5s
ExecStartPre=-/sbin/modprobe br_netfilter
ExecStartPre=-/sbin/modprobe overlay
ExecStart=${BIN_DIR}/k1s \\
    ${CMD_K1S}${EXEC_ARGS}
EOF
}

create_config_dir() {
    ${SUDO} mkdir -p "${DESTDIR}${CONFIG_DIR}"
    if [ ! -e "${DESTDIR}${CONFIG_DIR}/config.yaml" ]; then
        info "Creating ${CONFIG_DIR}/config.yaml (flags as keys, as in k3s's config.yaml)"
        ${SUDO} tee "${DESTDIR}${CONFIG_DIR}/config.yaml" >/dev/null <<'EOF'
# k1s flags, one per line, named as on the command line without the dashes; lists for
# repeatable flags; command-line flags win. Files in config.yaml.d/*.yaml follow.
# node-name: pi1
# tls-san:
#   - pi1.local
# disable:
#   - servicelb
EOF
    fi
}

service_enable_and_start() {
    if [ -n "${DESTDIR}" ]; then
        return
    fi
    if ! systemd_running; then
        state=no-systemctl
        command -v systemctl >/dev/null 2>&1 && state=$(systemctl is-system-running 2>/dev/null || true)
        warn "systemd is not running here (${state}): ${SERVICE_K1S} is written but not enabled or started; run ${BIN_DIR}/k1s ${CMD_K1S} yourself, or boot with systemd"
        return
    fi
    [ "${INSTALL_K1S_SKIP_ENABLE}" = true ] && return
    info "systemd: Enabling ${SYSTEM_NAME} unit"
    ${SUDO} systemctl enable "${FILE_K1S_SERVICE}" >/dev/null
    ${SUDO} systemctl daemon-reload >/dev/null
    [ "${INSTALL_K1S_SKIP_START}" = true ] && return
    info "systemd: Starting ${SYSTEM_NAME} (waits until its API server is ready)"
    ${SUDO} systemctl restart "${SYSTEM_NAME}"
}

setup_env "$@"
install_binary
create_killall
create_uninstall
create_config_dir
create_env_file
create_service_file "$@"
service_enable_and_start
info "Done: ${SERVICE_K1S} (${BIN_DIR}/k1s ${CMD_K1S}); uninstall with ${UNINSTALL_K1S_SH}"
