"""What an operator watches the vault by: Prometheus metrics, OpenTelemetry traces (opt-in)
and the log format. Everything here is built once per app and passed explicitly."""
