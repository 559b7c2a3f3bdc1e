"""envoy.access_loggers.file: one model.AccessLog -> the AccessLog a connection manager or tcp_proxy carries, as
Pilot builds it (pilot/pkg/networking/core/accesslog.go buildFileAccessLogHelper: the format inline, JSON as a
Struct of labels)."""

from __future__ import annotations

from envoy.config.accesslog.v3 import accesslog_pb2
from envoy.config.core.v3 import substitution_format_string_pb2 as sfs_pb2
from envoy.extensions.access_loggers.file.v3 import file_pb2

from compiler import model
from compiler.emit import common

NAME = "envoy.access_loggers.file"


def of(log: model.AccessLog) -> accesslog_pb2.AccessLog:
    fmt = sfs_pb2.SubstitutionFormatString()
    if log.json:
        fmt.json_format.update(dict(log.json))
    else:
        fmt.text_format_source.inline_string = log.text
    return accesslog_pb2.AccessLog(name=NAME, typed_config=common.pack(file_pb2.FileAccessLog(
        path=log.path, log_format=fmt)))


def all_of(logs: tuple[model.AccessLog, ...]) -> list[accesslog_pb2.AccessLog]:
    return [of(log) for log in logs]
