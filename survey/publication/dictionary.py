"""The open data's data dictionary: every column of every release table, with its type and a
Persian and an English description. The open-data tests check that no table has a column
missing here, so the dictionary cannot silently fall behind the tables."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DICTIONARY", "TABLES", "Column", "dictionary_json"]


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    type: str
    en: str
    fa: str


def _c(name: str, kind: str, en: str, fa: str) -> Column:
    return Column(name, kind, en, fa)


_SE = _c("se", "number", "Standard error of the estimate", "خطای معیار برآورد")
_CI_LOW = _c(
    "ci_low",
    "number",
    "Lower end of the 95% confidence interval",
    "کران پایین فاصله اطمینان ۹۵ درصد",
)
_CI_HIGH = _c(
    "ci_high",
    "number",
    "Upper end of the 95% confidence interval",
    "کران بالای فاصله اطمینان ۹۵ درصد",
)
_GRADE = _c(
    "grade",
    "text",
    "Quality grade from sample size and coefficient of variation: A (reliable), B (use with "
    "care), C (low precision) or suppressed (too few responses: no number is published)",
    "درجه کیفیت بر پایه تعداد پاسخ و ضریب تغییرات: A (قابل اتکا)، B (با احتیاط)، C (دقت کم) "
    "یا suppressed (پاسخ‌ها کم است و عددی منتشر نمی‌شود)",
)
_SUPPRESSED = _c(
    "suppressed",
    "True/False",
    "True when the estimate is withheld (too few responses or too imprecise); its number "
    "columns are then empty",
    "اگر True باشد برآورد منتشر نمی‌شود (پاسخ کم یا دقت ناکافی) و ستون‌های عددی آن خالی است",
)
_AGENCY = _c(
    "agency",
    "code",
    "Agency code (names in codes.csv); empty when the row has no agency",
    "کد دستگاه (نام‌ها در codes.csv)؛ اگر ردیف دستگاه ندارد خالی است",
)
_PROVINCE = _c(
    "province",
    "code",
    "Province code (names in codes.csv); empty when the row has no province",
    "کد استان (نام‌ها در codes.csv)؛ اگر ردیف استان ندارد خالی است",
)

ESTIMATES = (
    _c(
        "level",
        "text",
        "Domain of the row: national, agency, agency_channel, service, province or agency_province",
        "سطح برآورد: national (کل کشور)، agency (دستگاه)، agency_channel (دستگاه و شیوه ارائه)، "
        "service (خدمت)، province (استان) یا agency_province (دستگاه و استان)",
    ),
    _AGENCY,
    _c(
        "channel",
        "code",
        "How the service was delivered (in_person, online, phone, kiosk); empty when the level "
        "has no channel",
        "شیوه ارائه خدمت (in_person حضوری، online برخط، phone تلفنی، kiosk کیوسک)؛ "
        "در سطوح دیگر خالی",
    ),
    _c(
        "service",
        "code",
        "Service code from the national service catalogue; empty when the level has no service",
        "کد خدمت در فهرست ملی خدمات؛ در سطوح دیگر خالی",
    ),
    _PROVINCE,
    _c(
        "measure",
        "text",
        "index: satisfaction index 0-100; satisfied: share of satisfied citizens in percent",
        "index: شاخص رضایت از ۰ تا ۱۰۰؛ satisfied: درصد شهروندان راضی",
    ),
    _c(
        "estimate",
        "number",
        "Design-weighted estimate (weights adjusted for nonresponse within strata and "
        "calibrated to the frame counts); empty when suppressed",
        "برآورد وزنی (وزن‌ها برای بی‌پاسخی در هر طبقه تعدیل و با شمار کل تراکنش‌ها هم‌سنگ "
        "شده‌اند)؛ اگر حذف شده باشد خالی است",
    ),
    _SE,
    _CI_LOW,
    _CI_HIGH,
    _c(
        "df",
        "number",
        "Degrees of freedom used for the interval",
        "درجه آزادی به کار رفته در فاصله اطمینان",
    ),
    _c(
        "cv",
        "number",
        "Coefficient of variation: standard error divided by the estimate (a fraction)",
        "ضریب تغییرات: خطای معیار تقسیم بر برآورد (به صورت کسر)",
    ),
    _c("n", "integer", "Number of responses in the domain", "تعداد پاسخ‌ها در این حوزه"),
    _c(
        "n_sampled",
        "integer",
        "Sampled transactions (invitations) in the domain",
        "تعداد تراکنش‌های نمونه‌گیری‌شده (دعوت‌شده) در این حوزه",
    ),
    _c(
        "response_rate",
        "number",
        "Responses divided by sampled transactions, 0-1; empty when none was sampled",
        "نرخ پاسخ: پاسخ‌ها تقسیم بر نمونه‌ها، از ۰ تا ۱؛ اگر نمونه‌ای نبوده خالی است",
    ),
    _GRADE,
    _SUPPRESSED,
    _c(
        "previous_estimate",
        "number",
        "The estimate for the previous period (empty when there is none or it was suppressed)",
        "برآورد دوره قبل (اگر نباشد یا حذف شده باشد خالی است)",
    ),
    _c(
        "change",
        "number",
        "Estimate minus the previous period's estimate",
        "تغییر: برآورد این دوره منهای برآورد دوره قبل",
    ),
    _c(
        "change_ci_low",
        "number",
        "Lower end of the 95% interval of the change",
        "کران پایین فاصله اطمینان ۹۵ درصد تغییر",
    ),
    _c(
        "change_ci_high",
        "number",
        "Upper end of the 95% interval of the change",
        "کران بالای فاصله اطمینان ۹۵ درصد تغییر",
    ),
    _c(
        "change_significant",
        "True/False",
        "True only when the interval of the change excludes 0",
        "فقط وقتی True است که فاصله اطمینان تغییر، صفر را در بر نگیرد",
    ),
    _c(
        "compared_with",
        "text",
        "The figure this row is compared with: national (agency and province rows) or agency "
        "(the row's own agency: agency x channel, service and agency x province rows); empty "
        "when either figure is suppressed",
        "رقمی که این ردیف با آن مقایسه شده است: national (رقم کل کشور، برای ردیف‌های دستگاه و "
        "استان) یا agency (رقم همان دستگاه، برای ردیف‌های دستگاه و شیوه ارائه، خدمت و دستگاه و "
        "استان)؛ اگر یکی از دو رقم منتشر نشود خالی است",
    ),
    _c(
        "difference",
        "number",
        "Estimate minus the figure it is compared with (both from the same responses: the "
        "interval accounts for their correlation)",
        "تفاوت برآورد با رقمی که با آن مقایسه شده است (هر دو از همان پاسخ‌ها؛ فاصله اطمینان "
        "همبستگی آن دو را در نظر می‌گیرد)",
    ),
    _c(
        "difference_ci_low",
        "number",
        "Lower end of the 95% interval of the difference",
        "کران پایین فاصله اطمینان ۹۵ درصد تفاوت",
    ),
    _c(
        "difference_ci_high",
        "number",
        "Upper end of the 95% interval of the difference",
        "کران بالای فاصله اطمینان ۹۵ درصد تفاوت",
    ),
    _c(
        "difference_significant",
        "True/False",
        "True only when the interval of the difference excludes 0",
        "فقط وقتی True است که فاصله اطمینان تفاوت، صفر را در بر نگیرد",
    ),
    _c(
        "rank",
        "integer",
        "Rank of the agency among agencies with a published estimate (1 = best); agency rows only",
        "رتبه دستگاه در میان دستگاه‌های دارای برآورد منتشرشده (۱ = بهترین)؛ فقط در ردیف‌های دستگاه",
    ),
    _c(
        "rank_low",
        "integer",
        "Best rank the agency plausibly has (95% rank interval)",
        "بهترین رتبه محتمل دستگاه (فاصله اطمینان ۹۵ درصد رتبه)",
    ),
    _c(
        "rank_high",
        "integer",
        "Worst rank the agency plausibly has (95% rank interval)",
        "بدترین رتبه محتمل دستگاه (فاصله اطمینان ۹۵ درصد رتبه)",
    ),
)

ITEMS = (
    _c(
        "level",
        "text",
        "national or agency",
        "national (کل کشور) یا agency (دستگاه)",
    ),
    _AGENCY,
    _c(
        "item",
        "text",
        "Question (driver) id, e.g. q_time; its wording is in the questionnaire",
        "شناسه پرسش (عامل)، مثلاً q_time؛ متن آن در پرسشنامه است",
    ),
    _c(
        "estimate",
        "number",
        "Mean score of the item, 0-100; empty when suppressed",
        "میانگین امتیاز پرسش از ۰ تا ۱۰۰؛ اگر حذف شده باشد خالی است",
    ),
    _SE,
    _CI_LOW,
    _CI_HIGH,
    _c("n", "integer", "Number of responses to the item", "تعداد پاسخ‌ها به این پرسش"),
    _GRADE,
    _SUPPRESSED,
    _c(
        "importance",
        "number",
        "Importance of the item for overall satisfaction: its share of the explained "
        "variance (key-driver analysis), 0-1",
        "اهمیت پرسش برای رضایت کلی: سهم آن از واریانس توضیح‌داده‌شده (تحلیل عوامل کلیدی)، از ۰ تا ۱",
    ),
    _c(
        "importance_low",
        "number",
        "Lower end of the 95% interval of the importance",
        "کران پایین فاصله اطمینان ۹۵ درصد اهمیت",
    ),
    _c(
        "importance_high",
        "number",
        "Upper end of the 95% interval of the importance",
        "کران بالای فاصله اطمینان ۹۵ درصد اهمیت",
    ),
    _c(
        "importance_note",
        "text",
        "Why the importance is missing (too few responses, drivers that move together), else empty",
        "دلیل نبودن اهمیت (پاسخ کم، عوامل هم‌خط)؛ در غیر این صورت خالی",
    ),
)

SMALL_AREAS = (
    _c("agency", "code", "Agency code", "کد دستگاه"),
    _c("province", "code", "Province code", "کد استان"),
    _c(
        "direct",
        "number",
        "Direct survey estimate of the index in the cell (empty with no or too few responses)",
        "برآورد مستقیم شاخص در این خانه (اگر پاسخ نباشد یا کم باشد خالی است)",
    ),
    _c(
        "direct_se",
        "number",
        "Standard error of the direct estimate",
        "خطای معیار برآورد مستقیم",
    ),
    _c("n", "integer", "Responses in the cell", "تعداد پاسخ‌ها در این خانه"),
    _c(
        "model",
        "number",
        "Small-area (Fay-Herriot) estimate of the index, borrowing strength from other cells",
        "برآورد ناحیه کوچک (مدل فی-هریوت) شاخص که از خانه‌های دیگر هم کمک می‌گیرد",
    ),
    _c(
        "model_rmse",
        "number",
        "Root mean squared error of the model estimate",
        "ریشه میانگین مربع خطای برآورد مدل",
    ),
    _c(
        "used",
        "text",
        "direct or model: which estimate the pages show (model only where the direct one "
        "fails the quality rule)",
        "direct یا model: برآوردی که صفحه‌ها نشان می‌دهند (مدل فقط جایی که برآورد مستقیم "
        "قاعده کیفیت را برآورده نمی‌کند)",
    ),
)

CODES = (
    _c(
        "kind",
        "text",
        "What the code names: agency, service, province or channel",
        "نوع کد: agency (دستگاه)، service (خدمت)، province (استان) یا channel (شیوه ارائه)",
    ),
    _c(
        "code",
        "code",
        "The code as it appears in the other tables",
        "کد، همان‌گونه که در جدول‌های دیگر آمده",
    ),
    _c("name_fa", "text", "Persian name", "نام فارسی"),
    _c("name_en", "text", "English name", "نام انگلیسی"),
)

TABLES: dict[str, tuple[str, str]] = {
    "estimates": (
        "Satisfaction index and share satisfied per domain, with intervals, grades, change and "
        "rank",
        "شاخص رضایت و درصد راضی‌ها در هر حوزه با فاصله اطمینان، درجه کیفیت، تغییر و رتبه",
    ),
    "items": (
        "Score and importance of each driver question, nationally and per agency",
        "امتیاز و اهمیت هر پرسش (عامل) در کل کشور و برای هر دستگاه",
    ),
    "small_areas": (
        "Index per agency and province, direct and small-area model estimates",
        "شاخص هر دستگاه در هر استان، برآورد مستقیم و برآورد مدل ناحیه کوچک",
    ),
    "codes": (
        "Persian and English names of the codes used in the other tables",
        "نام فارسی و انگلیسی کدهای به کار رفته در جدول‌های دیگر",
    ),
}

DICTIONARY: dict[str, tuple[Column, ...]] = {
    "estimates": ESTIMATES,
    "items": ITEMS,
    "small_areas": SMALL_AREAS,
    "codes": CODES,
}


def dictionary_json() -> dict[str, object]:
    """The dictionary as the API serves it."""
    return {
        "tables": [
            {
                "table": name,
                "description": {"en": TABLES[name][0], "fa": TABLES[name][1]},
                "columns": [
                    {"name": c.name, "type": c.type, "description": {"en": c.en, "fa": c.fa}}
                    for c in columns
                ],
            }
            for name, columns in DICTIONARY.items()
        ],
        "notes": {
            "en": "CSV files are UTF-8, comma-separated, one header line; an empty cell is a "
            "missing value. JSON has the same columns, null for missing values. A published "
            "release never changes; a correction is a new release.",
            "fa": "فایل‌های CSV با کدگذاری UTF-8 و جداکننده ویرگول هستند و یک سطر سرستون دارند؛ "
            "خانه خالی یعنی مقدار ندارد. JSON همان ستون‌ها را دارد و مقدار نداشته را null "
            "می‌نویسد. انتشار منتشرشده هرگز تغییر نمی‌کند؛ اصلاح، انتشاری تازه است.",
        },
    }
