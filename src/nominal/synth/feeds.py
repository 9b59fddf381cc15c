"""The partner feeds: who sends each dataset, in what shape, and the contract for it.

Every feed has its own column names, date format, encoding and file format, as real
partners' extracts do. Canonical names (left) follow ``nominal.contracts``; attributes
(event details) get snake_case canonical names with types and closed value lists.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

NPOL = ("NPOL", "Northshire Police")
NFRS = ("NFRS", "Northshire Fire and Rescue Service")
KCC = ("KCC", "Kettleby City Council")
KHT = ("KHT", "Kettleby Hospitals NHS Trust")
NAS = ("NAS", "Northshire Ambulance Service NHS Trust")
NMH = ("NMH", "Northshire Mental Health NHS Foundation Trust")
PATH = ("PATH", "Pathways Recovery Service")
PROB = ("PROB", "Probation Service - Northshire")
DWP = ("DWP", "Department for Work and Pensions")


@dataclass(frozen=True)
class Col:
    source: str
    type: str = "string"
    values: tuple[str, ...] | None = None
    required: bool = False
    personal: bool | None = None
    mapping: dict[str, str] | None = None
    description: str | None = None
    scheme: str | None = None  # how the partner codes ethnicity (ons, nhs, dfe)


@dataclass(frozen=True)
class FeedSpec:
    dataset: str
    feed: str
    title: str
    partner: tuple[str, str]
    agency: str
    agreement: str
    stem: str
    fmt: str  # csv, ndjson, xlsx, parquet
    columns: dict[str, Col]  # canonical name -> source column
    event_type: str
    record_prefix: str
    date_format: str = "%d/%m/%Y"
    encoding: str = "utf-8"
    delimiter: str = ","
    error_scale: float = 1.0  # multiplies every recording-error rate
    reliability: float = 0.5
    retention_years: float = 7
    sex_codes: tuple[str, str] = ("M", "F")
    description: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def extension(self) -> str:
        return {"csv": "csv", "ndjson": "ndjson", "xlsx": "xlsx", "parquet": "parquet"}[self.fmt]

    @property
    def pattern(self) -> str:
        return f"{self.stem}_*.{self.extension}"

    def contract(self) -> dict[str, Any]:
        fields: dict[str, Any] = {}
        for name, col in self.columns.items():
            spec: dict[str, Any] = {"source": col.source}
            if col.type != "string":
                spec["type"] = col.type
            if col.values:
                spec["values"] = list(col.values)
            if col.required:
                spec["required"] = True
            if col.personal is not None:
                spec["personal"] = col.personal
            if col.mapping:
                spec["mapping"] = dict(col.mapping)
            if col.description:
                spec["description"] = col.description
            fields[name] = spec
        fields["event_type"] = {"value": self.event_type}
        if "sex" in fields and self.sex_codes != ("M", "F"):
            fields["sex"]["mapping"] = {self.sex_codes[0]: "M", self.sex_codes[1]: "F"}
        fmt: dict[str, Any] = {"type": self.fmt}
        if self.fmt in ("csv", "ndjson"):
            fmt["encoding"] = self.encoding
        if self.fmt == "csv":
            fmt["delimiter"] = self.delimiter
        if self.fmt in ("csv", "ndjson", "xlsx"):
            fmt["date_format"] = self.date_format
        if self.fmt == "xlsx":
            fmt["sheet"] = self.extra.get("sheet", "Sheet1")
        return {
            "contract_version": 1,
            "feed": self.feed,
            "title": self.title,
            "partner": {"code": self.partner[0], "name": self.partner[1]},
            "agency": self.agency,
            "dataset": self.dataset,
            "agreement": self.agreement,
            "description": self.description
            or f"{self.title} from {self.partner[1]} (synthetic feed made by nominal synth)",
            "reliability": self.reliability,
            "deliveries": {"pattern": self.pattern},
            "format": fmt,
            "fields": fields,
            "retention": {"years": self.retention_years, "from": "event_date"},
        }


def _identity(**sources: str) -> dict[str, Col]:
    out: dict[str, Col] = {}
    for canonical, source in sources.items():
        out[canonical] = Col(source, required=canonical == "record_id")
    if "date_of_birth" in out:
        out["date_of_birth"] = Col(sources["date_of_birth"], type="date")
    return out


def _cat(source: str, values: tuple[str, ...], **kw: Any) -> Col:
    return Col(source, type="category", values=values, **kw)


def _ethnicity(source: str, scheme: str) -> Col:
    from nominal.synth.names import ETHNICITY_SCHEMES

    codes, not_stated = ETHNICITY_SCHEMES[scheme]
    described = {"ons": "ONS 2021 ethnic group code", "nhs": "NHS ethnic category code",
                 "dfe": "DfE ethnicity code"}[scheme]  # fmt: skip
    return Col(
        source,
        type="category",
        values=(*sorted(set(codes.values())), not_stated),
        personal=True,
        description=f"{described} (special category data); {not_stated} = not stated",
        scheme=scheme,
    )


def _date(source: str, required: bool = False) -> Col:
    return Col(source, type="date", required=required)


OPEN_CLOSED = ("open", "closed")

FEEDS: tuple[FeedSpec, ...] = (
    FeedSpec(
        "police_incidents", "npol-incidents", "Police incidents (calls for service)", NPOL,
        "police", "ISA-T2-POL-01", "npol_incidents", "csv",
        {**_identity(record_id="IncidentPersonRef", given_name="Forename",
                     middle_names="MiddleNames", family_name="Surname", date_of_birth="DOB",
                     sex="Gender", address_line_1="AddressLine1", address_line_2="AddressLine2",
                     town="Town", postcode="PostCode", police_id="NominalID", phone="ContactNo"),
         "event_id": Col("IncidentNo"), "event_date": _date("IncidentDate", True),
         "oa_code": Col("OutputArea"),
         "ethnicity": _ethnicity("SelfDefinedEthnicity", "ons"),
         "incident_type": _cat("IncidentType", ("concern for welfare", "suspicious behaviour",
                               "disturbance", "road traffic", "mental health", "alcohol related",
                               "neighbour dispute", "concern for child")),
         "role": _cat("PersonRole", ("subject", "caller", "victim", "witness")),
         "grade": _cat("ResponseGrade", ("immediate", "priority", "scheduled"))},
        "police_incident", "NPI", error_scale=1.2, reliability=0.6,
        sex_codes=("Male", "Female"),
    ),
    FeedSpec(
        "crimes", "npol-crimes", "Recorded crimes: victims and suspects", NPOL, "police",
        "ISA-T2-POL-01", "npol_crimes", "csv",
        {**_identity(record_id="CrimePersonID", given_name="FIRST_NAME", family_name="LAST_NAME",
                     date_of_birth="BIRTH_DATE", sex="SEX", address_line_1="ADDRESS",
                     postcode="POSTCODE", police_id="PERSON_URN"),
         "event_id": Col("CRIME_REF"), "event_date": _date("COMMITTED_DATE", True),
         "role": _cat("INVOLVEMENT", ("victim", "suspect")),
         "offence_group": _cat("OFFENCE_GROUP", ("theft", "burglary", "criminal damage",
                               "violence without injury", "violence with injury", "public order",
                               "drug offences", "vehicle offences", "possession of weapons",
                               "sexual offences")),
         "crime_outcome": Col("OUTCOME")},
        "crime", "NPC", date_format="%Y-%m-%d", delimiter="|", error_scale=1.2, reliability=0.6,
        extra={"upper_case": True},
    ),
    FeedSpec(
        "domestic_abuse", "npol-domestic-abuse", "Domestic abuse incidents with DASH risk", NPOL,
        "police", "ISA-T2-POL-02", "npol_domestic_abuse", "csv",
        {**_identity(record_id="DAPersonRef", given_name="Forename", family_name="Surname",
                     date_of_birth="DateOfBirth", sex="Sex", address_line_1="Address1",
                     address_line_2="Address2", postcode="Postcode", police_id="NominalID",
                     phone="Phone"),
         "event_id": Col("OccurrenceNo"), "event_date": _date("OccurrenceDate", True),
         "role": _cat("Role", ("victim", "suspect")),
         "dash_risk": _cat("DASHRisk", ("standard", "medium", "high"),
                           description="DASH risk grading at the incident")},
        "domestic_abuse_incident", "NPD", delimiter=";", error_scale=1.2, reliability=0.6,
        sex_codes=("Male", "Female"),
    ),
    FeedSpec(
        "missing_persons", "npol-missing-persons", "Missing person reports", NPOL, "police",
        "ISA-T2-POL-03", "npol_missing", "ndjson",
        {**_identity(record_id="reportId", given_name="forename", family_name="surname",
                     date_of_birth="dateOfBirth", sex="gender", address_line_1="homeAddress",
                     postcode="homePostcode", police_id="nominalId"),
         "event_date": _date("reportedMissing", True), "event_end_date": _date("foundDate"),
         "risk_grading": _cat("riskGrading", ("low", "medium", "high"))},
        "missing_person", "NPM", date_format="%Y-%m-%d", error_scale=1.0, reliability=0.6,
    ),
    FeedSpec(
        "anti_social_behaviour", "kcc-asb", "Anti-social behaviour cases", KCC,
        "community safety", "ISA-T2-CSP-01", "kcc_asb", "csv",
        {**_identity(record_id="CaseRef", given_name="First Name", family_name="Last Name",
                     date_of_birth="Date of Birth", address_line_1="Address",
                     postcode="Postcode", phone="Telephone"),
         "event_date": _date("Date Reported", True),
         "asb_category": _cat("Category", ("personal", "nuisance", "environmental")),
         "asb_type": Col("ASB Type"), "action_taken": Col("Action Taken")},
        "anti_social_behaviour", "ASB", encoding="utf-8-sig", error_scale=1.4, reliability=0.4,
    ),
    FeedSpec(
        "csc_referrals", "kcc-csc-referrals", "Children's social care contacts and referrals",
        KCC, "children's social care", "ISA-T2-CSC-01", "kcc_csc_referrals", "csv",
        {**_identity(record_id="PersonReferralID", given_name="Forename",
                     middle_names="Middlenames", family_name="Surname",
                     other_names="FormerSurname", date_of_birth="DOB", sex="Gender",
                     address_line_1="AddressLine1", address_line_2="AddressLine2",
                     town="TownCity", postcode="Postcode", uprn="UPRN",
                     nhs_number="NHSNumber", household_ref="FamilyID",
                     relationship="RelationshipToChild"),
         "ethnicity": _ethnicity("Ethnicity", "dfe"),
         "event_id": Col("ReferralID"), "event_date": _date("ReferralDate", True),
         "referral_reason": _cat("PrimaryReason", ("neglect", "domestic abuse", "physical abuse",
                                 "emotional abuse", "parental substance misuse",
                                 "parental mental health", "child behaviour",
                                 "child sexual exploitation", "child criminal exploitation")),
         "referral_source": Col("ReferralSource"),
         "referral_outcome": _cat("ReferralOutcome", ("no further action", "early help",
                                  "assessment"))},
        "csc_referral", "CR", error_scale=1.0, reliability=0.7,
    ),
    FeedSpec(
        "cin_cp_plans", "kcc-cin-cp", "Child in need and child protection plans", KCC,
        "children's social care", "ISA-T2-CSC-01", "kcc_cin_cp", "csv",
        {**_identity(record_id="PlanPersonID", given_name="Forename", family_name="Surname",
                     date_of_birth="DOB", sex="Gender", address_line_1="AddressLine1",
                     postcode="Postcode", uprn="UPRN", nhs_number="NHSNumber",
                     household_ref="FamilyID", relationship="Relationship"),
         "event_id": Col("PlanID"), "event_date": _date("PlanStartDate", True),
         "event_end_date": _date("PlanEndDate"),
         "event_status": _cat("PlanStatus", OPEN_CLOSED),
         "plan_type": _cat("PlanType", ("child in need", "child protection")),
         "category_of_need": Col("CategoryOfNeed")},
        "cin_cp_plan", "CP", date_format="%d-%b-%Y", delimiter="\t", error_scale=0.8,
        reliability=0.7, sex_codes=("1", "2"),
    ),
    FeedSpec(
        "school_attendance", "kcc-school-attendance", "School attendance by academic year", KCC,
        "education", "ISA-T2-EDU-01", "kcc_attendance", "parquet",
        {**_identity(record_id="attendance_record_id", given_name="legal_forename",
                     family_name="legal_surname", date_of_birth="dob", sex="gender",
                     address_line_1="address_1", address_line_2="address_2",
                     postcode="postcode", pupil_number="upn"),
         "contact_name": Col("parent_contact_name", personal=True,
                             description="name of the pupil's first parental contact"),
         "contact_phone": Col("parent_contact_phone", personal=True),
         "ethnicity": _ethnicity("ethnicity", "dfe"),
         "event_date": _date("academic_year_start", True),
         "event_end_date": _date("academic_year_end"),
         "school_name": Col("school"),
         "year_group": Col("ncy", type="integer"),
         "sessions_possible": Col("sessions_possible", type="integer"),
         "sessions_missed": Col("sessions_missed", type="integer"),
         "attendance_pct": Col("attendance_pct", type="number"),
         "persistent_absence": Col("persistent_absence", type="boolean",
                                   mapping={"Y": "true", "N": "false"})},
        "school_attendance", "ATT", error_scale=0.5, reliability=0.8,
    ),
    FeedSpec(
        "school_exclusions", "kcc-exclusions", "School suspensions and permanent exclusions",
        KCC, "education", "ISA-T2-EDU-01", "kcc_exclusions", "csv",
        {**_identity(record_id="ExclusionID", given_name="Forename", family_name="Surname",
                     date_of_birth="DOB", sex="Gender", postcode="Postcode",
                     pupil_number="UPN"),
         "event_date": _date("StartDate", True),
         "exclusion_type": _cat("Category", ("suspension", "permanent")),
         "exclusion_reason": Col("Reason"),
         "sessions_excluded": Col("Sessions", type="integer")},
        "school_exclusion", "EXC", error_scale=0.6, reliability=0.8,
    ),
    FeedSpec(
        "early_years", "kcc-early-years", "Early years foundation stage profile (reception)",
        KCC, "early years", "ISA-T2-EY-01", "kcc_eyfsp", "xlsx",
        {**_identity(record_id="Record ID", given_name="Child Forename",
                     family_name="Child Surname", date_of_birth="Child DOB", sex="Child Sex",
                     address_line_1="Address", postcode="Postcode", pupil_number="UPN",
                     household_ref="Family Ref", relationship="Relationship"),
         "contact_name": Col("Parent/Carer Name", personal=True),
         "event_date": _date("Assessment Date", True),
         "good_level_of_development": Col("GLD", type="boolean",
                                          mapping={"Y": "true", "N": "false"},
                                          description="reached a good level of development"),
         "early_learning_goals_met": Col("ELGs Met", type="integer")},
        "eyfs_profile", "EYF", error_scale=0.8, reliability=0.7, extra={"sheet": "EYFSP"},
    ),
    FeedSpec(
        "ae_attendances", "kht-ae", "Emergency department attendances", KHT, "health",
        "ISA-T2-NHS-01", "kht_ae_attendances", "csv",
        {**_identity(record_id="AttendanceID", given_name="PatientForename",
                     family_name="PatientSurname", other_names="PreviousSurname",
                     date_of_birth="PatientDOB", sex="PatientSex", address_line_1="Addr1",
                     address_line_2="Addr2", town="Addr3", postcode="PatientPostcode",
                     nhs_number="NHSNo", phone="PatientPhone"),
         "ethnicity": _ethnicity("EthnicCategory", "nhs"),
         "event_date": _date("ArrivalDate", True),
         "presenting_complaint": _cat("ChiefComplaint", ("illness", "injury", "self-harm",
                                      "alcohol", "overdose", "assault", "fall")),
         "arrival_mode": _cat("ArrivalMode", ("walk-in", "ambulance", "police")),
         "disposal": Col("Disposal")},
        "ae_attendance", "AE", encoding="cp1252", error_scale=0.7, reliability=0.8,
    ),
    FeedSpec(
        "ambulance_callouts", "nas-callouts", "Ambulance incidents (patients attended)", NAS,
        "health", "ISA-T2-NHS-02", "nas_callouts", "ndjson",
        {**_identity(record_id="patientRecordId", given_name="patientFirstName",
                     family_name="patientLastName", date_of_birth="patientDob",
                     sex="patientGender", address_line_1="incidentAddress",
                     postcode="incidentPostcode", nhs_number="nhsNumber"),
         "event_id": Col("incidentId"), "event_date": _date("callDate", True),
         "call_category": Col("category", type="integer"),
         "nature_of_call": Col("natureOfCall"),
         "conveyed": Col("conveyedToHospital", type="boolean")},
        "ambulance_callout", "NAS", date_format="%Y-%m-%d", error_scale=1.5, reliability=0.5,
        sex_codes=("male", "female"), extra={"abbreviate_streets": True},
    ),
    FeedSpec(
        "mental_health", "nmh-episodes", "Mental health referrals and care episodes", NMH,
        "health", "ISA-T2-NHS-03", "nmh_episodes", "parquet",
        {**_identity(record_id="episode_id", given_name="forename", family_name="surname",
                     date_of_birth="date_of_birth", sex="sex", address_line_1="address_line1",
                     postcode="postcode", nhs_number="nhs_number"),
         "ethnicity": _ethnicity("ethnic_category", "nhs"),
         "event_date": _date("referral_date", True), "event_end_date": _date("discharge_date"),
         "event_status": _cat("episode_status", OPEN_CLOSED),
         "team": _cat("team", ("CAMHS", "Adult Community", "Crisis Resolution", "Older Adults")),
         "referral_source": Col("referral_source"), "primary_reason": Col("primary_reason")},
        "mental_health_episode", "MH", error_scale=0.6, reliability=0.8,
    ),
    FeedSpec(
        "substance_misuse", "path-treatment", "Substance misuse treatment episodes", PATH,
        "substance misuse", "ISA-T2-SMS-01", "path_treatment", "csv",
        {**_identity(record_id="ClientEpisodeID", given_name="FirstName", family_name="LastName",
                     date_of_birth="BirthDate", sex="Gender", postcode="ZipPostcode",
                     nhs_number="NHSNumber"),
         "event_date": _date("TriageDate", True), "event_end_date": _date("DischargeDate"),
         "event_status": _cat("Status", OPEN_CLOSED),
         "primary_substance": _cat("PrimarySubstance", ("alcohol", "opiates", "crack",
                                   "cannabis", "cocaine", "benzodiazepines")),
         "referral_source": Col("ReferralSource"), "exit_reason": Col("ExitReason")},
        "substance_misuse_episode", "PTH", date_format="%m/%d/%Y", error_scale=1.2,
        reliability=0.5, sex_codes=("Male", "Female"),
    ),
    FeedSpec(
        "homelessness", "kcc-homelessness", "Homelessness applications (H-CLIC)", KCC,
        "housing", "ISA-T2-HOU-01", "kcc_homelessness", "xlsx",
        {**_identity(record_id="Person ID", given_name="First Name", family_name="Surname",
                     date_of_birth="DOB", sex="Sex", address_line_1="Last Settled Address",
                     postcode="Last Settled Postcode", ni_number="NI Number",
                     household_ref="Application Ref", relationship="Relationship"),
         "event_date": _date("Approach Date", True),
         "homelessness_reason": Col("Reason for Loss of Home"),
         "duty_owed": _cat("Duty Owed", ("prevention", "relief", "main duty", "no duty owed")),
         "priority_need": Col("Priority Need", type="boolean",
                              mapping={"yes": "true", "no": "false"})},
        "homelessness_application", "HCL", error_scale=1.5, reliability=0.4,
        extra={"sheet": "Applications"},
    ),
    FeedSpec(
        "fire_incidents", "nfrs-incidents", "Fire and rescue incidents at dwellings", NFRS,
        "fire", "ISA-T2-FRS-01", "nfrs_incidents", "csv",
        {**_identity(record_id="IRS_PersonRef", given_name="OccupierForename",
                     family_name="OccupierSurname", address_line_1="PropertyAddress",
                     postcode="PropertyPostcode", uprn="UPRN"),
         "event_date": _date("CallDate", True),
         "incident_type": _cat("IncidentType", ("accidental dwelling fire", "deliberate fire",
                               "false alarm", "special service")),
         "cause": Col("Cause"), "casualties": Col("Casualties", type="integer")},
        "fire_incident", "IRS", date_format="%Y%m%d", error_scale=1.5, reliability=0.4,
        extra={"abbreviate_streets": True},
    ),
    FeedSpec(
        "home_fire_safety_visits", "nfrs-hfsv", "Home fire safety visits", NFRS, "fire",
        "ISA-T2-FRS-01", "nfrs_hfsv", "csv",
        {**_identity(record_id="VisitID", given_name="Forename", family_name="Surname",
                     date_of_birth="DOB", address_line_1="Address", postcode="Postcode",
                     uprn="UPRN", phone="Phone"),
         "event_date": _date("VisitDate", True),
         "referral_source": Col("ReferralSource"),
         "risk_level": _cat("RiskLevel", ("low", "medium", "high")),
         "smoke_alarms_fitted": Col("AlarmsFitted", type="integer")},
        "home_fire_safety_visit", "HFS", date_format="%Y%m%d", delimiter=";", error_scale=1.5,
        reliability=0.4, extra={"abbreviate_streets": True},
    ),
    FeedSpec(
        "probation", "prob-supervision", "Probation supervision", PROB, "probation",
        "ISA-T2-PRB-01", "prob_supervision", "csv",
        {**_identity(record_id="SupervisionID", given_name="FIRST_NAME",
                     family_name="SURNAME", date_of_birth="DATE_OF_BIRTH", sex="GENDER",
                     address_line_1="ADDRESS_LINE_1", postcode="POSTCODE",
                     ni_number="NI_NUMBER", police_id="PNC_ID"),
         "event_date": _date("SENTENCE_START", True), "event_end_date": _date("TERMINATION_DATE"),
         "event_status": _cat("STATUS", OPEN_CLOSED),
         "order_type": Col("ORDER_TYPE"),
         "tier": _cat("TIER", ("A", "B", "C", "D")),
         "risk_of_serious_harm": _cat("ROSH", ("low", "medium", "high", "very high"))},
        "probation_supervision", "PRB", date_format="%Y-%m-%d", delimiter="|", error_scale=0.7,
        reliability=0.7, extra={"upper_case": True},
    ),
    FeedSpec(
        "benefits", "dwp-claims", "Benefit claims", DWP, "benefits", "ISA-T2-DWP-01",
        "dwp_claims", "csv",
        {**_identity(record_id="CLAIM_PERSON_ID", given_name="FORENAME", family_name="SURNAME",
                     date_of_birth="DOB", sex="SEX", address_line_1="ADDR_LINE_1",
                     address_line_2="ADDR_LINE_2", postcode="POSTCODE", ni_number="NINO"),
         "event_date": _date("CLAIM_START", True), "event_end_date": _date("CLAIM_END"),
         "event_status": _cat("CLAIM_STATUS", OPEN_CLOSED),
         "benefit_type": _cat("BENEFIT", ("Universal Credit", "Personal Independence Payment",
                              "Pension Credit", "Carer's Allowance")),
         "weekly_amount": Col("WEEKLY_AMOUNT", type="number")},
        "benefit_claim", "DWP", date_format="%Y%m%d", error_scale=0.3, reliability=0.9,
        extra={"upper_case": True},
    ),
    FeedSpec(
        "early_help", "kcc-early-help", "Early help: Supporting Families programme", KCC,
        "early help", "ISA-T2-EH-01", "kcc_early_help", "xlsx",
        {**_identity(record_id="Member ID", given_name="Forename", family_name="Surname",
                     date_of_birth="DOB", sex="Gender", address_line_1="Address",
                     postcode="Postcode", household_ref="Family ID",
                     relationship="Family Role"),
         "event_date": _date("Start Date", True), "event_end_date": _date("Closure Date"),
         "event_status": _cat("Status", OPEN_CLOSED),
         "lead_professional": Col("Lead Professional"),
         "headline_problem": Col("Headline Problem"),
         "closure_outcome": Col("Outcome at Closure")},
        "early_help_episode", "EH", error_scale=0.8, reliability=0.6,
        extra={"sheet": "Families"},
    ),
)  # fmt: skip

FEEDS_BY_DATASET: dict[str, FeedSpec] = {f.dataset: f for f in FEEDS}
