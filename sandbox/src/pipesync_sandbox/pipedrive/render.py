"""The store's records in Pipedrive's JSON shapes: v2 (RFC 3339 times, ``custom_fields`` object) and v1
(``YYYY-MM-DD HH:MM:SS`` times, custom fields at the root)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date, datetime
from typing import Any

from pipesync_sandbox.pipedrive.envelope import json_bytes
from pipesync_sandbox.pipedrive.store import (
    Activity,
    Change,
    CustomField,
    Deal,
    Organization,
    Person,
    Pipeline,
    PipedriveStore,
    Stage,
    User,
)


# Store times are whole-second UTC, so isoformat (much faster than strftime) gives exactly these shapes.
# The standard fields of the v1 field catalogues other than deals' (key, name, field_type), as Pipedrive lists them.
V1_STANDARD_FIELDS: dict[str, list[tuple[str, str, str]]] = {
    "person": [("id", "ID", "int"), ("name", "Name", "varchar"), ("first_name", "First name", "varchar"),
               ("last_name", "Last name", "varchar"), ("org_id", "Organization", "org"), ("owner_id", "Owner", "user"),
               ("email", "Email", "varchar"), ("phone", "Phone", "phone"), ("add_time", "Person created", "date"),
               ("update_time", "Update time", "date"), ("visible_to", "Visible to", "visible_to")],
    "organization": [("id", "ID", "int"), ("name", "Name", "varchar"), ("owner_id", "Owner", "user"),
                     ("address", "Address", "address"), ("add_time", "Organization created", "date"),
                     ("update_time", "Update time", "date"), ("visible_to", "Visible to", "visible_to")],
    "note": [("id", "ID", "int"), ("content", "Content", "text"), ("deal_id", "Deal", "deal"),
             ("person_id", "Person", "people"), ("org_id", "Organization", "org"), ("lead_id", "Lead", "lead"),
             ("user_id", "User", "user"), ("add_time", "Add time", "date"), ("update_time", "Update time", "date"),
             ("pinned_to_deal_flag", "Pinned to deal", "boolean")],
    "activity": [("id", "ID", "int"), ("subject", "Subject", "varchar"), ("type", "Type", "enum"),
                 ("due_date", "Due date", "date"), ("due_time", "Due time", "time"), ("done", "Done", "boolean"),
                 ("deal_id", "Deal", "deal"), ("person_id", "Person", "people"), ("org_id", "Organization", "org"),
                 ("user_id", "Assigned to user", "user"), ("add_time", "Add time", "date"),
                 ("update_time", "Update time", "date")],
    "product": [("id", "ID", "int"), ("name", "Name", "varchar"), ("code", "Product code", "varchar"),
                ("unit", "Unit", "varchar"), ("prices", "Unit prices", "price"), ("owner_id", "Owner", "user"),
                ("add_time", "Add time", "date"), ("update_time", "Update time", "date")],
    "lead": [("id", "ID", "varchar"), ("title", "Title", "varchar"), ("owner_id", "Owner", "user"),
             ("person_id", "Person", "people"), ("organization_id", "Organization", "org"), ("value", "Value", "monetary"),
             ("expected_close_date", "Expected close date", "date"), ("add_time", "Lead created", "date"),
             ("update_time", "Update time", "date")],
}


# v1 field catalogues name types only from the reference's list (address, date, double, enum, monetary,
# org, people, phone, set, text, time, user, varchar, visible_to …): the nearest one for the others.
V1_FIELD_TYPES = {"int": "double", "boolean": "enum", "stage": "enum", "status": "enum", "deal": "double",
                  "lead": "varchar", "price": "double"}


def v2_time(moment: datetime | None) -> str | None:
    return moment.isoformat()[:19] + "Z" if moment else None


def v1_time(moment: datetime | None) -> str | None:
    return moment.isoformat(sep=" ")[:19] if moment else None


def _day(value: date | None) -> str | None:
    return value.isoformat() if value else None


# Fields a v2 deal carries only when asked for with include_fields. The world holds
# no activities, mail, files, notes or products, so their ids are null and counts 0.
OPTIONAL_DEAL_FIELDS: dict[str, Callable[[Deal], Any]] = {
    "next_activity_id": lambda d: None,
    "last_activity_id": lambda d: None,
    "first_won_time": lambda d: v2_time(d.first_won_time),
    "products_count": lambda d: 0,
    "files_count": lambda d: 0,
    "notes_count": lambda d: 0,
    "followers_count": lambda d: 1,  # the owner follows their deals
    "email_messages_count": lambda d: 0,
    "activities_count": lambda d: 0,
    "done_activities_count": lambda d: 0,
    "undone_activities_count": lambda d: 0,
    "participants_count": lambda d: 1 if d.person_id else 0,
    "last_incoming_mail_time": lambda d: None,
    "last_outgoing_mail_time": lambda d: None,
    "smart_bcc_email": lambda d: f"sandbox+deal{d.id}@pipedrivemail.com",
    "source_lead_id": lambda d: None,
}


class Renderer:
    """Renders one store's records; knows its custom fields and stage names."""

    def __init__(self, store: PipedriveStore):
        self.store = store
        self._deal_json: dict[int, tuple[int, int, bytes]] = {}  # id -> (revision, fields version, JSON)

    def deal_json(self, deal: Deal) -> bytes:
        """The default v2 rendering of ``deal`` as JSON, cached until the deal or the field catalogue changes."""
        cached = self._deal_json.get(deal.id)
        if cached and cached[0] == deal.revision and cached[1] == self.store.fields_version:
            return cached[2]
        encoded = json_bytes(self.deal(deal))
        self._deal_json[deal.id] = (deal.revision, self.store.fields_version, encoded)
        return encoded

    # -- v2 ---------------------------------------------------------------------------------

    def deal(self, deal: Deal, *, custom_keys: Iterable[str] | None = None,
             include: Iterable[str] = ()) -> dict[str, Any]:
        keys = list(custom_keys) if custom_keys is not None else [f.key for f in self.store.custom_fields.values()]
        body = {
            "id": deal.id,
            "title": deal.title,
            "owner_id": deal.owner_id,
            "person_id": deal.person_id,
            "org_id": deal.org_id,
            "pipeline_id": deal.pipeline_id,
            "stage_id": deal.stage_id,
            "value": deal.value,
            "currency": deal.currency,
            "add_time": v2_time(deal.add_time),
            "update_time": v2_time(deal.update_time),
            "stage_change_time": v2_time(deal.stage_change_time),
            "is_deleted": deal.is_deleted,
            "is_archived": deal.is_archived,
            "archive_time": v2_time(deal.archive_time),
            "status": deal.status,
            "probability": deal.probability,
            "lost_reason": deal.lost_reason,
            "visible_to": deal.visible_to,
            "close_time": v2_time(deal.close_time),
            "won_time": v2_time(deal.won_time),
            "lost_time": v2_time(deal.lost_time),
            "expected_close_date": _day(deal.expected_close_date),
            "label_ids": list(deal.label_ids),
            "origin": deal.origin,
            "origin_id": None,
            "channel": None,
            "channel_id": None,
            "arr": None,
            "mrr": None,
            "acv": None,
            "custom_fields": {key: deal.custom_fields.get(key) for key in keys},
        }
        for name in include:
            body[name] = OPTIONAL_DEAL_FIELDS[name](deal)
        return body

    @staticmethod
    def activity(activity: Activity) -> dict[str, Any]:
        return {
            "id": activity.id, "subject": activity.subject, "type": activity.type, "owner_id": activity.owner_id,
            "creator_user_id": activity.owner_id, "is_deleted": activity.is_deleted,
            "add_time": v2_time(activity.add_time), "update_time": v2_time(activity.update_time),
            "deal_id": activity.deal_id, "lead_id": None, "person_id": None, "org_id": None, "project_id": None,
            "due_date": _day(activity.due_date), "due_time": None, "duration": None, "busy": False,
            "done": activity.done, "marked_as_done_time": None, "location": None, "participants": [],
            "attendees": [], "conference_meeting_client": None, "conference_meeting_url": None,
            "conference_meeting_id": None, "public_description": None, "priority": None, "note": activity.note,
        }

    @staticmethod
    def pipeline(pipeline: Pipeline) -> dict[str, Any]:
        return {
            "id": pipeline.id,
            "name": pipeline.name,
            "order_nr": pipeline.order_nr,
            "is_deleted": pipeline.is_deleted,
            "is_deal_probability_enabled": pipeline.is_deal_probability_enabled,
            "add_time": v2_time(pipeline.add_time),
            "update_time": v2_time(pipeline.update_time),
        }

    @staticmethod
    def stage(stage: Stage) -> dict[str, Any]:
        return {
            "id": stage.id,
            "order_nr": stage.order_nr,
            "name": stage.name,
            "is_deleted": stage.is_deleted,
            "deal_probability": stage.deal_probability,
            "pipeline_id": stage.pipeline_id,
            "is_deal_rot_enabled": stage.is_deal_rot_enabled,
            "days_to_rotten": stage.days_to_rotten,
            "add_time": v2_time(stage.add_time),
            "update_time": v2_time(stage.update_time),
        }

    @staticmethod
    def organization(org: Organization) -> dict[str, Any]:
        return {
            "id": org.id,
            "name": org.name,
            "owner_id": org.owner_id,
            "add_time": v2_time(org.add_time),
            "update_time": v2_time(org.update_time),
            "is_deleted": False,
            "visible_to": 3,
            "address": {"value": org.country, "country": org.country},
            "label_ids": [],
            "website": org.website,
            "linkedin": None,
            "industry": None,
            "annual_revenue": None,
            "employee_count": None,
            "custom_fields": {},
        }

    @staticmethod
    def person(person: Person) -> dict[str, Any]:
        return {
            "id": person.id,
            "name": f"{person.first_name} {person.last_name}".strip(),
            "first_name": person.first_name,
            "last_name": person.last_name,
            "owner_id": person.owner_id,
            "org_id": person.org_id,
            "add_time": v2_time(person.add_time),
            "update_time": v2_time(person.update_time),
            "emails": [{"value": person.email, "primary": True, "label": "work"}],
            "phones": [],
            "is_deleted": False,
            "visible_to": 3,
            "label_ids": [],
            "custom_fields": {},
        }

    def deal_fields(self) -> list[dict[str, Any]]:
        """The deal field catalogue (``GET /api/v2/dealFields``): standard fields, then custom ones."""
        stage_options = [{"id": s.id, "label": s.name} for s in sorted(self.store.stages.values(),
                                                                         key=lambda s: (s.pipeline_id, s.order_nr))]
        standard = [
            ("id", "ID", "int", None, None),
            ("title", "Title", "varchar", None, None),
            ("owner_id", "Owner", "user", None, None),
            ("person_id", "Contact person", "people", None, None),
            ("org_id", "Organization", "org", None, None),
            ("value", "Value", "monetary", None,
             [{"field_code": "value", "field_name": "Amount of Value", "field_type": "double"},
              {"field_code": "currency", "field_name": "Currency of Value", "field_type": "varchar"}]),
            ("stage_id", "Stage", "stage", stage_options, None),
            ("status", "Status", "status",
             [{"id": s, "label": s.title()} for s in ("open", "won", "lost", "deleted")], None),
            ("probability", "Probability", "double", None, None),
            ("lost_reason", "Lost reason", "varchar", None, None),
            ("expected_close_date", "Expected close date", "date", None, None),
            ("add_time", "Deal created", "date", None, None),
            ("update_time", "Update time", "date", None, None),
            ("stage_change_time", "Last stage change", "date", None, None),
            ("close_time", "Deal closed on", "date", None, None),
            ("won_time", "Won time", "date", None, None),
            ("lost_time", "Lost time", "date", None, None),
            ("visible_to", "Visible to", "visible_to", None, None),
            ("label_ids", "Label", "set", [], None),
        ]
        fields = [self._field(code, name, kind, options, subfields, custom=False)
                  for code, name, kind, options, subfields in standard]
        fields += [self._field(code, code.replace("_", " ").capitalize(), "int", None, None, custom=False,
                               optional=True) for code in OPTIONAL_DEAL_FIELDS if code.endswith("_count")]
        fields += [self.custom_field(custom) for custom in self.store.custom_fields.values()]
        return fields

    @staticmethod
    def _field(code: str, name: str, kind: str, options: list[dict[str, Any]] | None,
               subfields: list[dict[str, Any]] | None, *, custom: bool, optional: bool = False) -> dict[str, Any]:
        return {
            "field_name": name,
            "field_code": code,
            "field_type": kind,
            "options": options,
            "subfields": subfields,
            "is_custom_field": custom,
            "is_optional_response_field": optional,
        }

    def custom_field(self, custom: CustomField) -> dict[str, Any]:
        options = None
        if custom.field_type == "enum":
            added = v2_time(custom.add_time)
            options = [{"id": option, "label": label, "color": None, "add_time": added, "update_time": added}
                       for option, label in custom.options.items()]
        return self._field(custom.key, custom.name, custom.field_type, options, None, custom=True)

    # -- v1 ---------------------------------------------------------------------------------

    def v1_fields(self, kind: str) -> list[dict[str, Any]]:
        """A v1 field catalogue (``GET /v1/dealFields``, ``/v1/noteFields`` …): deals' from the same
        catalogue v2 serves, the other objects' standard fields (the world holds no custom ones)."""
        if kind == "deal":
            catalogue = [(f["field_code"], f["field_name"], f["field_type"], f["options"], f["is_custom_field"])
                         for f in self.deal_fields()]
        else:
            catalogue = [(code, name, type_, None, False) for code, name, type_ in V1_STANDARD_FIELDS[kind]]
        stamp = v2_time(self.store.founded)  # the v1 reference types these fields date-time
        return [{"id": n, "key": code, "name": name, "order_nr": n, "field_type": V1_FIELD_TYPES.get(type_, type_),
                 "add_time": stamp, "update_time": stamp, "last_updated_by_user_id": self.store.admin_id,
                 "active_flag": True, "edit_flag": custom,
                 "index_visible_flag": True, "details_visible_flag": True, "add_visible_flag": True,
                 "important_flag": False, "bulk_edit_allowed": True, "searchable_flag": False,
                 "filtering_allowed": True, "sortable_flag": True, "mandatory_flag": code in ("title", "name", "content"),
                 **({"options": options} if options is not None else {})}
                for n, (code, name, type_, options, custom) in enumerate(catalogue, 1)]

    @staticmethod
    def user(user: User, *, is_you: bool) -> dict[str, Any]:
        return {
            "id": user.id,
            "name": user.name,
            "default_currency": "USD",
            "locale": "en_US",
            "lang": 1,
            "email": user.email,
            "phone": None,
            "activated": True,
            "last_login": v1_time(user.add_time),
            "created": v1_time(user.add_time),
            "modified": v1_time(user.add_time),
            "has_created_company": is_you,
            "access": [{"app": "sales", "admin": is_you, "permission_set_id": "sandbox-regular"}],
            "active_flag": True,
            "timezone_name": "UTC",
            "timezone_offset": "+00:00",
            "role_id": 1,
            "icon_url": None,
            "is_you": is_you,
            "is_deleted": False,
        }

    def deal_v1(self, deal: Deal) -> dict[str, Any]:
        """A deal in v1's flat shape (``/v1/recents``, ``/v1/deals/{id}/merge``)."""
        store = self.store
        stage = store.stages.get(deal.stage_id)
        person = store.persons.get(deal.person_id) if deal.person_id else None
        org = store.organizations.get(deal.org_id) if deal.org_id else None
        owner = store.users.get(deal.owner_id)
        probability = deal.probability if deal.probability is not None else (stage.deal_probability if stage else 0)
        body: dict[str, Any] = {
            "id": deal.id,
            "creator_user_id": deal.owner_id,
            "user_id": deal.owner_id,
            "person_id": deal.person_id,
            "org_id": deal.org_id,
            "stage_id": deal.stage_id,
            "title": deal.title,
            "value": deal.value,
            "currency": deal.currency,
            "add_time": v1_time(deal.add_time),
            "update_time": v1_time(deal.update_time),
            "stage_change_time": v1_time(deal.stage_change_time),
            "active": deal.status == "open" and not deal.is_deleted,
            "deleted": deal.is_deleted,
            "is_archived": deal.is_archived,
            "status": "deleted" if deal.is_deleted else deal.status,
            "probability": deal.probability,
            "next_activity_date": None,
            "next_activity_time": None,
            "next_activity_id": None,
            "last_activity_id": None,
            "last_activity_date": None,
            "lost_reason": deal.lost_reason,
            "visible_to": str(deal.visible_to),
            "close_time": v1_time(deal.close_time),
            "pipeline_id": deal.pipeline_id,
            "won_time": v1_time(deal.won_time),
            "first_won_time": v1_time(deal.first_won_time),
            "lost_time": v1_time(deal.lost_time),
            "expected_close_date": _day(deal.expected_close_date),
            "label": ",".join(str(label) for label in deal.label_ids) or None,
            "stage_order_nr": stage.order_nr if stage else None,
            "person_name": f"{person.first_name} {person.last_name}".strip() if person else None,
            "org_name": org.name if org else None,
            "formatted_value": f"{deal.value:,.0f} {deal.currency}",
            "weighted_value": round(deal.value * probability / 100, 2),
            "formatted_weighted_value": f"{deal.value * probability / 100:,.0f} {deal.currency}",
            "weighted_value_currency": deal.currency,
            "rotten_time": None,
            "owner_name": owner.name if owner else None,
            "org_hidden": False,
            "person_hidden": False,
            "origin": deal.origin,
            "origin_id": None,
            "channel": None,
            "channel_id": None,
        }
        for custom in store.custom_fields.values():
            value = deal.custom_fields.get(custom.key)
            # v1 gives option ids of enum fields as strings
            body[custom.key] = str(value) if custom.field_type == "enum" and value is not None else value
        return body

    def flow_item(self, deal: Deal, change: Change) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": change.id,
            "item_id": deal.id,
            "user_id": change.user_id,
            "field_key": change.field_key,
            "old_value": change.old_value,
            "new_value": change.new_value,
            "is_bulk_update_flag": None,
            "log_time": v1_time(change.time),
            "change_source": change.change_source,
            "change_source_user_agent": None,
            "additional_data": self._formatted(change),
        }
        return {"object": "dealChange", "timestamp": v1_time(change.time), "data": data}

    def _formatted(self, change: Change) -> dict[str, Any]:
        """Stage changes carry the stage names, as Pipedrive's flow does."""
        if change.field_key != "stage_id":
            return {}
        names = {}
        for side, value in (("old_value_formatted", change.old_value), ("new_value_formatted", change.new_value)):
            stage = self.store.stages.get(int(value)) if value and value.isdigit() else None
            names[side] = stage.name if stage else None
        return names

    @staticmethod
    def changelog_item(change: Change) -> dict[str, Any]:
        return {
            "field_key": change.field_key,
            "old_value": change.old_value,
            "new_value": change.new_value,
            "actor_user_id": change.user_id,
            "time": v1_time(change.time),
            "change_source": change.change_source,
            "change_source_user_agent": None,
            "is_bulk_update_flag": False,
        }
