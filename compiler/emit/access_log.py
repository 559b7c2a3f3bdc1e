"""One model.AccessLog -> the AccessLog a connection manager or tcp_proxy carries: envoy.access_loggers.file as
Pilot builds it (pilot/pkg/networking/core/accesslog.go buildFileAccessLogHelper: the format inline, JSON as a
Struct of labels), or an OpenTelemetry one (compiler.emit.otel_access_log); either with a Telemetry filter as
Envoy's CEL extension filter (buildAccessLogFilterFromTelemetry)."""

from __future__ import annotations

from envoy.config.accesslog.v3 import accesslog_pb2
from envoy.config.core.v3 import extension_pb2
from envoy.config.core.v3 import substitution_format_string_pb2 as sfs_pb2
from envoy.extensions.access_loggers.file.v3 import file_pb2
from envoy.extensions.access_loggers.filters.cel.v3 import cel_pb2
from envoy.extensions.formatter.req_without_query.v3 import req_without_query_pb2

from compiler import model
from compiler.emit import common, otel_access_log

NAME = "envoy.access_loggers.file"
REQ_WITHOUT_QUERY = "envoy.formatter.req_without_query"
CEL_FILTER = "envoy.access_loggers.extension_filters.cel"


def of(log: model.AccessLog) -> accesslog_pb2.AccessLog:
    if log.otel is not None:
        config = otel_access_log.config(log, log.otel, formatters(log))
        return accesslog_pb2.AccessLog(name=otel_access_log.NAME, filter=filter_of(log),
                                       typed_config=common.pack(config))
    fmt = sfs_pb2.SubstitutionFormatString(formatters=formatters(log))
    if log.json:
        fmt.json_format.update(dict(log.json))
    else:
        fmt.text_format_source.inline_string = log.text
    return accesslog_pb2.AccessLog(name=NAME, filter=filter_of(log), typed_config=common.pack(
        file_pb2.FileAccessLog(path=log.path, log_format=fmt)))


def filter_of(log: model.AccessLog) -> accesslog_pb2.AccessLogFilter | None:
    """The log's CEL filter, for every kind of access log (None logs every request)."""
    if not log.filter:
        return None
    return accesslog_pb2.AccessLogFilter(extension_filter=accesslog_pb2.ExtensionFilter(
        name=CEL_FILTER, typed_config=common.pack(cel_pb2.ExpressionFilter(expression=log.filter))))


def formatters(log: model.AccessLog) -> list[extension_pb2.TypedExtensionConfig]:
    """The formatter extensions the log's command operators need: Envoy refuses `%REQ_WITHOUT_QUERY(...)%` without
    its extension (telemetry_logging.go accessLogFormatters; CEL and METADATA are built into Envoy's formatter)."""
    used = " ".join((log.text, *(value for _, value in log.json)))
    if "%REQ_WITHOUT_QUERY" not in used:
        return []
    return [extension_pb2.TypedExtensionConfig(name=REQ_WITHOUT_QUERY,
                                               typed_config=common.pack(req_without_query_pb2.ReqWithoutQuery()))]


def all_of(logs: tuple[model.AccessLog, ...]) -> list[accesslog_pb2.AccessLog]:
    return [of(log) for log in logs]
