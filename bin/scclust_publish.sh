#!/bin/sh
# Usage: scclust_publish.sh OUTDIR ID ITEM...
# Publishes one dataset's outputs as OUTDIR/ID, replacing an earlier OUTDIR/ID as a whole, so that the folder
# always holds the files of one run: the new folder is assembled beside it (OUTDIR/.ID.new.PID) and renamed into
# place; the old one is renamed away first (OUTDIR/.ID.old.PID) and deleted after. A publish that fails or is
# interrupted removes its new folder and puts the old one back, so OUTDIR/ID stays exactly as it was.
#
# Two runs may publish the same dataset at once (the same command started twice, a sweep into one outdir). Each
# publish holds the lock OUTDIR/.ID.lock (a folder: mkdir is atomic on local and network file systems) with an
# `owner` file (pid, host, start), so a later one replaces the earlier one whole instead of moving into it or
# deleting its half-built folder. A publish waits SCCLUST_PUBLISH_WAIT seconds (default 60) for the lock, then
# stops naming its holder. A lock whose holder died on this host (killed with -9, machine crash) is taken over;
# one from another host cannot be checked, so the message says to remove it.
#
# Plain POSIX sh/cp/mv: this runs on the launch machine, outside any container.
set -eu
outdir=$1
id=$2
shift 2
wait_s=${SCCLUST_PUBLISH_WAIT:-60}
case $wait_s in
    '' | *[!0-9]*)
        echo "scclust_publish: SCCLUST_PUBLISH_WAIT must be a whole number of seconds, not '$wait_s'" >&2
        exit 2
        ;;
esac
dst="$outdir/$id"
lock="$outdir/.$id.lock"
# where a lock goes to be deleted: renamed first, so that no waiter can add to it while it is being deleted
discard="$outdir/.$id.lock.$$"
new="$outdir/.$id.new.$$"
old="$outdir/.$id.old.$$"
host=$(uname -n)
me="$$ $host $(date -u '+%Y-%m-%dT%H:%M:%SZ')"
held=0 made_new=0 moved_old=0 placed=0

say() {
    echo "scclust_publish: $*" >&2
}

# Sets o_pid, o_host, o_since and o_line from the lock's owner file; fails while it is missing or half-written.
read_owner() {
    read -r o_pid o_host o_since o_more 2>/dev/null <"$lock/owner" || return 1
    case $o_pid in '' | *[!0-9]*) return 1 ;; esac
    [ -n "$o_since" ] && [ -z "$o_more" ] || return 1
    o_line="$o_pid $o_host $o_since"
}

release() {
    # not if a user removed it (a run stuck?) and another run took it; an unreadable owner is ours, unwritten (disk full)
    if [ "$held" = 1 ] && { ! read_owner || [ "$o_line" = "$me" ]; }; then
        rm -rf "$discard"
        mv "$lock" "$discard" && rm -rf "$discard"
    fi
    held=0
}

on_exit() {
    status=$?
    set +e
    trap - EXIT HUP INT TERM
    if [ "$placed" = 0 ]; then
        if [ "$made_new" = 1 ]; then
            rm -rf "$new"
        fi
        if [ "$moved_old" = 1 ] && { [ -e "$dst" ] || [ -L "$dst" ] || ! mv "$old" "$dst"; }; then
            say "could not put the earlier results back to $dst; they are in $old"
        elif [ "$held" = 1 ]; then
            say "publishing $dst failed; it is left as it was"
        fi
    fi
    release
    exit "$status"
}
trap on_exit EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM

# kill -0 also fails for another user's live process (and ps or /proc may not list it): only ESRCH means gone. A
# shell that words it otherwise makes every holder look alive, so a stale lock is reported, never wrongly taken over.
alive() {
    case $(LC_ALL=C kill -0 "$1" 2>&1) in
        *[Nn]o\ such\ process*) return 1 ;;
    esac
}

# A lock is stale when its holder ran on this host and is gone. Two waiters may find the same stale lock: only the
# one that creates $lock/breaking deletes it, and only if its owner is still the one found stale (when a newer,
# live lock took its place, the claim stays in that lock and goes when it is released).
take_over_if_stale() {
    read_owner && [ "$o_host" = "$host" ] && ! alive "$o_pid" || return 1
    found=$o_line
    mkdir "$lock/breaking" 2>/dev/null || return 1
    read_owner && [ "$o_line" = "$found" ] || return 1
    rm -rf "$discard"
    mv "$lock" "$discard"
    rm -rf "$discard"
    say "took over the lock $lock of pid $o_pid on host $o_host since $o_since, which is no longer running"
}

mkdir -p "$outdir"
waited=0 # tenths of a second
until mkdir "$lock" 2>/dev/null; do
    if [ ! -d "$lock" ]; then
        # not held, yet mkdir failed: a lock released just now, or a real error (permissions) to report
        err=$(mkdir "$lock" 2>&1) && break
        [ -d "$lock" ] || { say "$err"; exit 1; }
    fi
    if take_over_if_stale; then
        continue
    fi
    if [ "$waited" -ge "$((wait_s * 10))" ]; then
        if read_owner; then
            holder="held by pid $o_pid on host $o_host since $o_since"
        elif [ ! -d "$lock" ]; then
            continue
        else
            holder="its owner not recorded"
        fi
        say "another run is publishing $dst (lock $lock, $holder); wait for it to finish, or remove $lock if no run is active"
        exit 1
    fi
    # fractional sleep is not POSIX, but GNU, BSD and busybox sleep have it
    if sleep 0.1 2>/dev/null; then
        waited=$((waited + 1))
    else
        sleep 1
        waited=$((waited + 10))
    fi
done
held=1
echo "$me" >"$lock/owner"

# Under the lock, every .ID.new.PID, .ID.old.PID and .ID.lock.PID is a leftover of an interrupted publish (killed
# with -9). Matched by exact name: dataset ids may hold glob characters, and ID.new.3 is another dataset's id.
for path in "$outdir"/.*; do
    rest=${path##*/}
    rest=${rest#".$id".}
    case $rest in
        new.* | old.* | lock.*) ;;
        *) continue ;;
    esac
    case ${rest#*.} in
        '' | *[!0-9]*) continue ;;
    esac
    rm -rf "$path"
done

made_new=1
mkdir "$new"
for item in "$@"; do
    # -H follows the staged link to the task's output; links inside it (a store's links to the input) stay links
    cp -R -H "$item" "$new/"
done
if [ -e "$dst" ] || [ -L "$dst" ]; then
    mv "$dst" "$old"
    moved_old=1
fi
# POSIX mv moves INTO a folder that exists at $dst. None can under the lock, unless written by something that
# takes no lock (an older scclust, a user): then the new folder is found inside it.
mv "$new" "$dst"
if [ -e "$dst/${new##*/}" ]; then
    rm -rf "$dst/${new##*/}"
    say "$dst was created while publishing, by something that takes no lock; the new results were not published"
    exit 1
fi
placed=1
rm -rf "$old"
