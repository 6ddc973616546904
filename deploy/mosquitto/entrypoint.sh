#!/bin/sh
# Start Mosquitto with a password file holding the one account given by MQTT_USERNAME and
# MQTT_PASSWORD. The file is rewritten at every start, so changing .env and recreating the
# container (docker compose up -d) changes the credentials.
set -eu

: "${MQTT_USERNAME:?MQTT_USERNAME is not set (see .env.example)}"
: "${MQTT_PASSWORD:?MQTT_PASSWORD is not set (see .env.example)}"

CONFIG=/shopfloor/mosquitto/mosquitto.conf
PASSWORD_FILE=/mosquitto/config/passwd

# Only the broker may read the password file: create it with mode 0600.
umask 077
rm -f "$PASSWORD_FILE"
mosquitto_passwd -b -c "$PASSWORD_FILE" "$MQTT_USERNAME" "$MQTT_PASSWORD"

if [ "$(id -u)" = 0 ]; then
    # Mosquitto drops to the mosquitto user, which must own its password file and data.
    chown mosquitto:mosquitto "$PASSWORD_FILE"
    chown -R mosquitto:mosquitto /mosquitto/data
fi

exec mosquitto -c "$CONFIG"
