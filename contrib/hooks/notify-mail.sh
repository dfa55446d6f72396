#!/bin/sh
# Mail the administrator on every failover, fence and self-fence.
# Run it as a systemd service next to wingmand (as a member of group wingman).
set -eu
TO=${WINGMAN_MAILTO:-root}
wingman events --follow --json | while read -r ev; do
	case "$ev" in
	*'"kind":"declared-dead"'*|*'"kind":"self-fence"'*|*'"kind":"power-fence'*|*'"kind":"started"'*|*'"kind":"failed"'*)
		echo "$ev" | mail -s "wingman: $(hostname): event" "$TO" ;;
	esac
done
