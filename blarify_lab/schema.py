"""``GraphSchema``: how a code graph is shaped, in one frozen value.

Which relationships make the hierarchy, which one is the call graph, which property names a
node (its identity) and which one keys it for good (its stable key), where a node's kind comes
from (its labels, or a property), which nodes are code, which tenant a session works in and
how documentation is stored. ``GraphSchema()`` is the graphs ``load_python_package`` builds;
``GraphSchema.blarify(entity_id=..., repo_id=...)`` the graphs blarify builds.

Every name that ends up in Cypher text is checked here (``names.validate_identifier``, also ``queries.validate_identifier``); the
fragments below are what the query builders in ``queries`` splice in. Tenant values are
never spliced: they travel as parameters (``params()``). Pure: no database.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from .names import DOCUMENTATION_LABEL, SESSION_LABEL, validate_identifier

__all__ = ["BLARIFY_HIERARCHY", "DocumentationLayout", "GraphSchema", "SchemaName"]

DocumentationLayout = Literal["default", "blarify"]
SchemaName = Literal["default", "blarify"]
BLARIFY_HIERARCHY = ("CONTAINS", "FUNCTION_DEFINITION", "CLASS_DEFINITION")


@dataclass(frozen=True, slots=True)
class GraphSchema:
    """How a code graph is shaped (see the module docstring); every field is validated.

    ``tenant`` maps tenant properties to the value a session keeps to (``None``: not chosen;
    a blarify graph with a single tenant chooses it when a session starts).
    """

    name: SchemaName = "default"
    hierarchy_relationships: tuple[str, ...] = ("CONTAINS",)
    call_relationship: str = "CALLS"
    identity_property: str = "path"
    key_property: str | None = None
    kind_property: str | None = None  # None: the kind is the node's labels
    code_property: str | None = None  # with code_value: only nodes where it equals code_value
    code_value: str | None = None
    tenant: tuple[tuple[str, str | None], ...] = ()
    documentation_layout: DocumentationLayout = "default"
    # what follows a file's identity in its definitions' identities (blarify: '#' for class
    # members, '.' for functions), and the property a file shares with its definitions (None:
    # the part of a definition's identity before its separator is its file's identity)
    definition_separators: tuple[str, ...] = ("::",)
    file_property: str | None = None
    file_kinds: tuple[str, ...] = ("FILE",)
    folder_kinds: tuple[str, ...] = ("FOLDER",)

    def __post_init__(self) -> None:
        if self.name not in ("default", "blarify"):
            raise ValueError(f"invalid schema name {self.name!r}: 'default' or 'blarify'")
        if not self.hierarchy_relationships:
            raise ValueError("a schema needs at least one hierarchy relationship type")
        for rel in (*self.hierarchy_relationships, self.call_relationship):
            validate_identifier(rel, "relationship type")
        for prop in (self.identity_property, self.key_property, self.kind_property):
            if prop is not None:
                validate_identifier(prop, "property name")
        if (self.code_property is None) != (self.code_value is None):
            raise ValueError("code_property and code_value go together")
        if self.code_property is not None:
            validate_identifier(self.code_property, "property name")
            validate_identifier(self.code_value, "code property value")
        for prop, value in self.tenant:
            validate_identifier(prop, "tenant property")
            if value is not None and not isinstance(value, str):
                raise ValueError(f"tenant value {value!r} for {prop!r} must be a string")
        if self.documentation_layout not in ("default", "blarify"):
            raise ValueError(
                f"invalid documentation layout {self.documentation_layout!r}: "
                "'default' or 'blarify'"
            )
        if not self.definition_separators or not all(
            isinstance(sep, str) and sep for sep in self.definition_separators
        ):
            raise ValueError("definition_separators must be non-empty strings")
        if self.file_property is not None:
            validate_identifier(self.file_property, "property name")
        for kind in (*self.file_kinds, *self.folder_kinds):
            validate_identifier(kind, "kind")

    @classmethod
    def blarify(cls, entity_id: str | None = None, repo_id: str | None = None) -> GraphSchema:
        """The graphs blarify builds: ``CONTAINS``/``FUNCTION_DEFINITION``/``CLASS_DEFINITION``,
        ``node_path`` names a node, ``node_id`` keys it, the kind in ``label``, code where
        ``layer = 'code'``, tenants by ``entityId`` and ``repoId``, documentation that
        blarify's readers read."""
        return cls(
            name="blarify",
            hierarchy_relationships=BLARIFY_HIERARCHY,
            identity_property="node_path",
            key_property="node_id",
            kind_property="label",
            code_property="layer",
            code_value="code",
            tenant=(("entityId", entity_id), ("repoId", repo_id)),
            documentation_layout="blarify",
            definition_separators=("#", "."),
            file_property="path",
        )

    # --------------------------------------------------------------------------- reading
    @property
    def hierarchy(self) -> str:
        """The hierarchy types as one relationship pattern (``A|B|C``)."""
        return "|".join(self.hierarchy_relationships)

    @property
    def tenant_values(self) -> dict[str, str]:
        """The tenant properties a session keeps to, with their values."""
        return {prop: value for prop, value in self.tenant if value is not None}

    @property
    def tenant_label(self) -> str | None:
        """The tenant as text (``entityId=u1, repoId=r1``), or None when there is none."""
        values = self.tenant_values
        return ", ".join(f"{k}={v}" for k, v in values.items()) if values else None

    def with_tenant(self, values: dict[str, str | None]) -> GraphSchema:
        """The same schema keeping to ``values`` (tenant properties not named keep theirs)."""
        current = dict(self.tenant)
        current.update({k: v for k, v in values.items() if k in current})
        return replace(self, tenant=tuple(current.items()))

    def params(self) -> dict[str, str]:
        """The query parameters the code filter refers to (the tenant's values)."""
        return {f"tenant_{prop}": value for prop, value in self.tenant_values.items()}

    # ------------------------------------------------------------------ Cypher fragments
    def code_filter(self, var: str, *, with_tenant: bool = True) -> str:
        """The condition that ``var`` is a code node of this schema (and of its tenant)."""
        var = validate_identifier(var, "variable")
        parts = [f"{var}.{self.identity_property} IS NOT NULL"]
        if self.code_property is not None:
            parts.append(f"{var}.{self.code_property} = '{self.code_value}'")
        parts += [f"NOT {var}:{SESSION_LABEL}", f"NOT {var}:{DOCUMENTATION_LABEL}"]
        if with_tenant:
            parts += [f"{var}.{prop} = $tenant_{prop}" for prop in self.tenant_values]
        return " AND ".join(parts)

    def identity(self, var: str) -> str:
        """The expression naming ``var`` (its identity property)."""
        return f"{validate_identifier(var, 'variable')}.{self.identity_property}"

    def kinds(self, var: str) -> str:
        """The expression of ``var``'s kind as a list (its labels, or ``[var.<kind>]``)."""
        var = validate_identifier(var, "variable")
        if self.kind_property is None:
            return f"labels({var})"
        return f"[{var}.{self.kind_property}]"

    def own_key(self, var: str) -> str:
        """The expression of ``var``'s own key (its key property, else its identity)."""
        var = validate_identifier(var, "variable")
        own = f"{var}.{self.key_property or self.identity_property}"
        if self.key_property is not None and self.key_property != self.identity_property:
            own = f"coalesce({own}, {var}.{self.identity_property})"
        return own

    def key(self, var: str) -> str:
        """The expression of ``var``'s stable key (what its documentation is keyed by):
        the tenant's properties, then its key property (else its identity)."""
        var = validate_identifier(var, "variable")
        own = self.own_key(var)
        if not self.tenant:
            return own
        tenant = " + '|' + ".join(f"coalesce({var}.{prop}, '')" for prop, _ in self.tenant)
        return f"{tenant} + '|' + {own}"

    def named(self, var: str, param: str) -> str:
        """``var`` is named ``$param``: by its identity, by its stable key where there is one,
        or by the property a file shares with its definitions (so that such a name is
        reported as ambiguous, never resolved to "the first")."""
        props = (self.identity_property, self.key_property, self.file_property)
        names = [f"{validate_identifier(var, 'variable')}.{p}" for p in props if p is not None]
        param = validate_identifier(param, "parameter")
        return "(" + " OR ".join(f"{name} = ${param}" for name in names) + ")"

    def doc_text(self, var: str) -> str:
        """The property of a documentation node that holds the description."""
        var = validate_identifier(var, "variable")
        return f"{var}.content" if self.documentation_layout == "blarify" else f"{var}.description"

    def doc_fields(self, doc: str, code: str, values: str) -> str:
        """The ``SET`` items that write a description (from the map ``values``: description,
        input_hash, model, truncated, ungrounded, grounded_ratio) into the documentation node ``doc`` of the code node ``code``."""
        d, n, v = (validate_identifier(x, "variable") for x in (doc, code, values))
        labels = f"CASE WHEN size(labels({n})) > 0 THEN labels({n}) ELSE {self.kinds(n)} END"
        common = (
            f"{d}.input_hash = {v}.input_hash, {d}.model = {v}.model, "
            f"{d}.truncated = {v}.truncated, {d}.ungrounded = {v}.ungrounded, "
            f"{d}.grounded_ratio = {v}.grounded_ratio, "
            f"{d}.session_id = $session_id, {d}.updated_at = timestamp()"
        )
        if self.documentation_layout == "default":
            return f"{d}.description = {v}.description, {common}, {d}.node_path = {n}.path"
        tenant = "".join(f", {d}.{prop} = {n}.{prop}" for prop, _ in self.tenant)
        key = f"{n}.{self.key_property or self.identity_property}"
        return (
            f"{d}.content = {v}.description, {d}.layer = 'documentation', "
            f"{d}.info_type = coalesce({v}.info_type, 'leaf_analysis'), "
            f"{d}.source_type = 'code', {d}.source_node_id = {key}, "
            f"{d}.source_path = {n}.{self.file_property or self.identity_property}, "
            f"{d}.source_labels = {labels}, {common}{tenant}"
        )
