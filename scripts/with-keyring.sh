#!/bin/sh
# with-keyring.sh runs a command with a real, unlocked Secret Service
# (gnome-keyring) on the current D-Bus session, for the keyring tests on a
# machine without a desktop. Run it inside a fresh session bus and keyring
# directory, so nothing outlives the command:
#
#   XDG_DATA_HOME="$(mktemp -d)" dbus-run-session -- sh scripts/with-keyring.sh \
#       go test -tags keyring_integration -run Keyring ./tokens/
#
# KEYRING_PW is the keyring's password (created with it on first use).
# Needs: gnome-keyring, dbus-daemon (dbus-run-session) and dbus-send.

if [ -z "$DBUS_SESSION_BUS_ADDRESS" ]; then
	# Without a session bus, go-keyring's D-Bus library would start its own
	# daemon that outlives the test.
	echo "with-keyring.sh: no D-Bus session; run it under dbus-run-session" >&2
	exit 2
fi

# --unlock reads the password on stdin; --foreground keeps the daemon our
# child, so it can be stopped by its pid below.
printf '%s' "${KEYRING_PW:-ci-pass}" |
	gnome-keyring-daemon --foreground --unlock --components=secrets >/dev/null 2>&1 &
KPID=$!

# Wait up to 5 s for the daemon to own the Secret Service name.
i=0
until dbus-send --session --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus \
	org.freedesktop.DBus.NameHasOwner string:org.freedesktop.secrets 2>/dev/null | grep -q 'boolean true'; do
	i=$((i + 1))
	if [ "$i" -gt 50 ]; then
		echo "with-keyring.sh: the secret service did not start" >&2
		kill "$KPID" 2>/dev/null
		wait "$KPID" 2>/dev/null
		exit 1
	fi
	sleep 0.1
done

"$@"
rc=$?
kill "$KPID" 2>/dev/null
wait "$KPID" 2>/dev/null
exit $rc
