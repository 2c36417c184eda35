"""An InfluxQL query type for grafana-foundation-sdk, which ships none.

Registered as a dataquery variant for the `influxdb` data source type, as the SDK's "custom
query type" how-to describes, so dashboards that use it parse back through the SDK's models
(`Dashboard.from_json`) instead of falling into `UnknownDataquery`. It always emits raw InfluxQL
(`rawQuery: true`): the text Grafana sends, after expanding variables and macros, to `/query`.
"""

from __future__ import annotations

from typing import Any, Literal, Self

from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import runtime as cogruntime
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.models.dashboard import DataSourceRef

DATASOURCE_TYPE = "influxdb"
DATASOURCE_VARIABLE = "datasource"
"""Every query names the data source through this dashboard variable, never a fixed uid."""

ResultFormat = Literal["time_series", "table", "logs"]


def datasource_ref() -> DataSourceRef:
    return DataSourceRef(type_val=DATASOURCE_TYPE, uid=f"${{{DATASOURCE_VARIABLE}}}")


class InfluxQLQuery(cogvariants.Dataquery):
    """One raw InfluxQL target of a panel."""

    def __init__(self, query: str = "", ref_id: str | None = None,
                 result_format: ResultFormat = "time_series", alias: str | None = None,
                 hide: bool | None = None, datasource: DataSourceRef | None = None) -> None:
        self.query = query
        self.ref_id = ref_id
        self.result_format = result_format
        self.alias = alias
        self.hide = hide
        self.datasource = datasource

    def to_json(self) -> dict[str, object]:
        payload: dict[str, object] = {"rawQuery": True, "query": self.query,
                                      "resultFormat": self.result_format}
        if self.alias is not None:
            payload["alias"] = self.alias
        if self.ref_id is not None:
            payload["refId"] = self.ref_id
        if self.hide is not None:
            payload["hide"] = self.hide
        if self.datasource is not None:
            payload["datasource"] = self.datasource
        return payload

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        datasource = data.get("datasource")
        return cls(query=data.get("query", ""), ref_id=data.get("refId"),
                   result_format=data.get("resultFormat", "time_series"),
                   alias=data.get("alias"), hide=data.get("hide"),
                   datasource=DataSourceRef.from_json(datasource) if datasource else None)


class InfluxQL(cogbuilder.Builder[InfluxQLQuery]):
    """Builder: `InfluxQL("SELECT …").ref_id("A").alias("$tag_device")`."""

    def __init__(self, query: str) -> None:
        self._internal = InfluxQLQuery(query=query, datasource=datasource_ref())

    def build(self) -> InfluxQLQuery:
        return self._internal

    def ref_id(self, ref_id: str) -> Self:
        self._internal.ref_id = ref_id
        return self

    def alias(self, alias: str) -> Self:
        """Series name; Grafana fills `$tag_<key>`, `$col`, `$m` in it."""
        self._internal.alias = alias
        return self

    def table(self) -> Self:
        self._internal.result_format = "table"
        return self

    def hide(self) -> Self:
        self._internal.hide = True
        return self


def register() -> None:
    """Teach the SDK's runtime to parse `influxdb` targets back into InfluxQLQuery."""
    cogruntime.Runtime().register_dataquery_variant(
        cogruntime.DataqueryConfig(identifier=DATASOURCE_TYPE,
                                   from_json_hook=InfluxQLQuery.from_json))


register()
