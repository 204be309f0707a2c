#!/bin/sh
# Usage: scclust_publish.sh OUTDIR ID ITEM...
# Publishes one dataset's outputs as OUTDIR/ID, replacing an earlier OUTDIR/ID as a whole, so that the folder
# always holds the files of one run: the new folder is assembled beside it (OUTDIR/.ID.new.PID) and renamed into
# place; the old one is renamed away first and deleted after. A run that fails before this leaves OUTDIR/ID as it
# was. Plain POSIX sh/cp/mv: this runs on the launch machine, outside any container.
set -eu
outdir=$1
id=$2
shift 2
mkdir -p "$outdir"
# leftovers of an interrupted earlier publish of this dataset (dataset ids never start with '.')
rm -rf "$outdir/.$id".new.* "$outdir/.$id".old.*
new="$outdir/.$id.new.$$"
old="$outdir/.$id.old.$$"
mkdir "$new"
for item in "$@"; do
    # -H follows the staged link to the task's output; links inside it (a store's links to the input) stay links
    cp -R -H "$item" "$new/"
done
if [ -e "$outdir/$id" ] || [ -L "$outdir/$id" ]; then
    mv "$outdir/$id" "$old"
fi
mv "$new" "$outdir/$id"
rm -rf "$old"
