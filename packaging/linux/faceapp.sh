#!/bin/sh
# /usr/bin/faceapp: the installed app (a PyInstaller bundle in /opt/faceapp).
exec /opt/faceapp/faceapp "$@"
