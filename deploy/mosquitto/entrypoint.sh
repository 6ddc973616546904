#!/bin/sh
# Start Mosquitto with a password file holding the one account given by MQTT_USERNAME and
# MQTT_PASSWORD. The file is rewritten at every start, so changing .env and recreating the
# container (docker compose up -d) changes the credentials.
#
# The password goes on no command line, which every process list shows: the shell's own printf
# writes it into the files, and mosquitto_passwd hashes the password file in place.
set -eu

: "${MQTT_USERNAME:?MQTT_USERNAME is not set (see .env.example)}"
: "${MQTT_PASSWORD:?MQTT_PASSWORD is not set (see .env.example)}"
case "$MQTT_PASSWORD" in
change-me*)
    echo "error: MQTT_PASSWORD is still the placeholder of .env.example (change-me...): set a secret of your own" >&2
    exit 2
    ;;
esac

CONFIG=/shopfloor/mosquitto/mosquitto.conf
PASSWORD_FILE=/mosquitto/config/passwd
# The options of the health check's mosquitto_sub, which reads them from
# $XDG_CONFIG_HOME/mosquitto_sub (see docker-compose.yml).
HEALTH_OPTIONS=/mosquitto/config/mosquitto_sub

# Only their owner may read these files: create them with mode 0600.
umask 077
rm -f "$PASSWORD_FILE" "$HEALTH_OPTIONS"
printf '%s:%s\n' "$MQTT_USERNAME" "$MQTT_PASSWORD" > "$PASSWORD_FILE"
mosquitto_passwd -U "$PASSWORD_FILE"
printf '%s\n' "-u $MQTT_USERNAME" "-P $MQTT_PASSWORD" > "$HEALTH_OPTIONS"

if [ "$(id -u)" = 0 ]; then
    # Mosquitto drops to the mosquitto user, which must own its password file and data.
    chown mosquitto:mosquitto "$PASSWORD_FILE"
    chown -R mosquitto:mosquitto /mosquitto/data
fi

exec mosquitto -c "$CONFIG"
