#!/bin/sh
# check-level.sh FILE: accept a rendered level file only if it holds a level
# Spring Boot knows (or nothing, meaning inherit), so that a typo in a key
# never reaches the app. tend's template check runs it.
set -eu
level=$(cat "$1")
case $level in
'' | OFF | ERROR | WARN | INFO | DEBUG | TRACE) ;;
*)
	echo "level \"$level\" is not one of OFF, ERROR, WARN, INFO, DEBUG, TRACE (fix the key, or delete it to inherit)" >&2
	exit 1
	;;
esac
