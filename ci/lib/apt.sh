# Sourced by the ci/ scripts that install Debian packages. Needs the caller's `as_root`.
#
# Another apt or dpkg may be running on the machine (an unattended upgrade, or a second
# ci/ script in parallel): `apt-get install` waits for the dpkg lock with DPkg::Lock::Timeout,
# but `apt-get update` (apt 2.6) fails at once on the package-lists lock, so it is retried
# while apt names a held lock, for up to APT_LOCK_WAIT seconds; other failures end at once.
APT_LOCK_WAIT=${APT_LOCK_WAIT:-600}

apt_get() {
  local deadline=$((SECONDS + APT_LOCK_WAIT)) err
  while :; do
    if { err=$(DEBIAN_FRONTEND=noninteractive as_root apt-get \
      -o DPkg::Lock::Timeout="$APT_LOCK_WAIT" "$@" 2>&1 >&3); } 3>&1; then
      [ -z "$err" ] || echo "$err" >&2
      return 0
    fi
    if ! grep -q "Could not get lock" <<<"$err" || [ "$SECONDS" -ge "$deadline" ]; then
      echo "$err" >&2
      return 1
    fi
    echo "apt: another apt or dpkg holds its lock; waiting" >&2
    sleep 5
  done
}
