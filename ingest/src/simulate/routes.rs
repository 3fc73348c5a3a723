//! The route table of the simulator: thirteen legs of the region's migration corridors, as
//! the agency of one reporting country sees each. Base volumes add up to about 800
//! incidents a day, weighted to where apprehensions are highest (Nimroz, Van, Edirne).

use relec_schemas::Direction::{Entry, Exit};

use super::geography::PointKind::{Airport, GreenBorder, Official};
use super::geography::{BorderSection, CrossingPoint, Route};

const fn section(id: &'static str, name: &'static str) -> BorderSection {
    BorderSection { id, name }
}

#[rustfmt::skip]
pub(crate) const ROUTES: &[Route] = &[
    // Afghans entering Iran across the Nimroz desert, the busiest leg of the region.
    Route {
        id: "AFG-IRN-NIMROZ", from: "AFG", to: "IRN", reporting_country: "IRN", direction: Entry,
        base_daily: 150.0, group_mean: 11.0, seasonal_amplitude: 0.10, family_share: 0.15,
        nationality_mix: &[("AFG", 0.92), ("PAK", 0.06), ("BGD", 0.02)],
        sections: &[section("IRN-SB-MILAK", "Milak (Zahak county)"), section("IRN-SB-HIRMAND", "Hirmand river")],
        points: &[
            CrossingPoint { id: "IRN-MILAK-BCP", name: "Milak border crossing (opposite Zaranj)", section: "IRN-SB-MILAK", kind: Official, lat: 31.015, lon: 61.780, agency: "IRN-BORDER-GUARD", weight: 0.15 },
            CrossingPoint { id: "IRN-ZAHAK-GREEN", name: "Zahak green border", section: "IRN-SB-MILAK", kind: GreenBorder, lat: 30.900, lon: 61.680, agency: "IRN-BORDER-GUARD", weight: 0.40 },
            CrossingPoint { id: "IRN-HIRMAND-GREEN", name: "Hirmand river reed beds", section: "IRN-SB-HIRMAND", kind: GreenBorder, lat: 31.150, lon: 61.600, agency: "IRN-BORDER-GUARD", weight: 0.45 },
            CrossingPoint { id: "IRN-LUTAK-TRACK", name: "Lutak desert track", section: "IRN-SB-MILAK", kind: GreenBorder, lat: 30.730, lon: 61.420, agency: "IRN-BORDER-GUARD", weight: 0.0 },
        ],
        modus_operandi: &["pickup convoy across the desert", "on foot with a guide at night", "hidden in a fuel tanker"],
        hazard: "vehicle overturned fleeing a checkpoint",
    },
    // The same flow seen from the Afghan side at Herat, as exits.
    Route {
        id: "AFG-IRN-HERAT", from: "AFG", to: "IRN", reporting_country: "AFG", direction: Exit,
        base_daily: 55.0, group_mean: 6.0, seasonal_amplitude: 0.08, family_share: 0.20,
        nationality_mix: &[("AFG", 0.97), ("PAK", 0.03)],
        sections: &[section("AFG-HRT-ISLAM-QALA", "Islam Qala (Herat)"), section("AFG-HRT-KOHSAN", "Kohsan district")],
        points: &[
            CrossingPoint { id: "AFG-ISLAM-QALA-BCP", name: "Islam Qala border crossing (opposite Dogharoun)", section: "AFG-HRT-ISLAM-QALA", kind: Official, lat: 34.665, lon: 61.065, agency: "AFG-BORDER-POLICE", weight: 0.45 },
            CrossingPoint { id: "AFG-KOHSAN-GREEN", name: "Kohsan green border", section: "AFG-HRT-KOHSAN", kind: GreenBorder, lat: 34.650, lon: 61.200, agency: "AFG-BORDER-POLICE", weight: 0.35 },
            CrossingPoint { id: "AFG-GHORIAN-GREEN", name: "Ghorian green border", section: "AFG-HRT-ISLAM-QALA", kind: GreenBorder, lat: 34.300, lon: 61.050, agency: "AFG-BORDER-POLICE", weight: 0.20 },
        ],
        modus_operandi: &["by bus to the border, on foot across", "hidden in a goods truck", "with smuggler-provided Iranian papers"],
        hazard: "drowned crossing the Hari Rud",
    },
    // Pakistanis and Afghans leaving Pakistan for Iran at Taftan / Mirjaveh.
    Route {
        id: "PAK-IRN-TAFTAN", from: "PAK", to: "IRN", reporting_country: "PAK", direction: Exit,
        base_daily: 65.0, group_mean: 7.0, seasonal_amplitude: 0.08, family_share: 0.10,
        nationality_mix: &[("PAK", 0.72), ("AFG", 0.20), ("BGD", 0.08)],
        sections: &[section("PAK-BAL-TAFTAN", "Taftan (Chagai)"), section("PAK-BAL-MASHKEL", "Mashkel")],
        points: &[
            CrossingPoint { id: "PAK-TAFTAN-BCP", name: "Taftan border crossing (opposite Mirjaveh)", section: "PAK-BAL-TAFTAN", kind: Official, lat: 28.962, lon: 61.595, agency: "PAK-FIA", weight: 0.50 },
            CrossingPoint { id: "PAK-TAFTAN-GREEN", name: "Taftan green border", section: "PAK-BAL-TAFTAN", kind: GreenBorder, lat: 28.850, lon: 61.500, agency: "PAK-FC", weight: 0.30 },
            CrossingPoint { id: "PAK-MASHKEL-GREEN", name: "Mashkel desert crossing", section: "PAK-BAL-MASHKEL", kind: GreenBorder, lat: 28.020, lon: 62.950, agency: "PAK-FC", weight: 0.20 },
        ],
        modus_operandi: &["by bus to Taftan with an agent", "on foot across the desert with a guide", "hidden in a goods truck"],
        hazard: "died of heat and thirst in the desert",
    },
    // Entries into Iran along the Makran border further south.
    Route {
        id: "PAK-IRN-MAKRAN", from: "PAK", to: "IRN", reporting_country: "IRN", direction: Entry,
        base_daily: 35.0, group_mean: 8.0, seasonal_amplitude: 0.08, family_share: 0.08,
        nationality_mix: &[("PAK", 0.75), ("AFG", 0.15), ("BGD", 0.10)],
        sections: &[section("IRN-SB-SARAVAN", "Saravan"), section("IRN-SB-RASK", "Rask / Pishin")],
        points: &[
            CrossingPoint { id: "IRN-SARAVAN-GREEN", name: "Saravan border area", section: "IRN-SB-SARAVAN", kind: GreenBorder, lat: 27.370, lon: 62.600, agency: "IRN-BORDER-GUARD", weight: 0.40 },
            CrossingPoint { id: "IRN-PISHIN-GREEN", name: "Pishin border area", section: "IRN-SB-RASK", kind: GreenBorder, lat: 26.080, lon: 61.750, agency: "IRN-BORDER-GUARD", weight: 0.35 },
            CrossingPoint { id: "IRN-RIMDAN-BCP", name: "Rimdan border crossing (opposite Gabd)", section: "IRN-SB-RASK", kind: Official, lat: 25.250, lon: 61.620, agency: "IRN-BORDER-GUARD", weight: 0.25 },
            CrossingPoint { id: "IRN-JALQ-GREEN", name: "Jalq border area", section: "IRN-SB-SARAVAN", kind: GreenBorder, lat: 27.600, lon: 62.720, agency: "IRN-BORDER-GUARD", weight: 0.0 },
        ],
        modus_operandi: &["pickup convoy on smuggling tracks", "by boat along the Makran coast", "on foot with a guide"],
        hazard: "vehicle crash on a desert track",
    },
    // Afghans entering Pakistan at Torkham and through the Khyber and Kurram hills.
    Route {
        id: "AFG-PAK-TORKHAM", from: "AFG", to: "PAK", reporting_country: "PAK", direction: Entry,
        base_daily: 45.0, group_mean: 4.0, seasonal_amplitude: 0.06, family_share: 0.30,
        nationality_mix: &[("AFG", 0.96), ("PAK", 0.04)],
        sections: &[section("PAK-KP-TORKHAM", "Torkham (Khyber)"), section("PAK-KP-KURRAM", "Kurram")],
        points: &[
            CrossingPoint { id: "PAK-TORKHAM-BCP", name: "Torkham border crossing", section: "PAK-KP-TORKHAM", kind: Official, lat: 34.126, lon: 71.093, agency: "PAK-FIA", weight: 0.60 },
            CrossingPoint { id: "PAK-KHYBER-GREEN", name: "Khyber green border", section: "PAK-KP-TORKHAM", kind: GreenBorder, lat: 34.100, lon: 71.050, agency: "PAK-FC", weight: 0.25 },
            CrossingPoint { id: "PAK-KURRAM-GREEN", name: "Kurram green border", section: "PAK-KP-KURRAM", kind: GreenBorder, lat: 33.900, lon: 70.000, agency: "PAK-FC", weight: 0.15 },
        ],
        modus_operandi: &["without documents among day labourers", "with a forged visa", "on foot over the hills"],
        hazard: "fell from a mountain path",
    },
    // Exits from Afghanistan at Spin Boldak towards Chaman and Quetta.
    Route {
        id: "AFG-PAK-CHAMAN", from: "AFG", to: "PAK", reporting_country: "AFG", direction: Exit,
        base_daily: 40.0, group_mean: 5.0, seasonal_amplitude: 0.06, family_share: 0.30,
        nationality_mix: &[("AFG", 0.96), ("PAK", 0.04)],
        sections: &[section("AFG-KDH-SPIN-BOLDAK", "Spin Boldak (Kandahar)"), section("AFG-KDH-SHORABAK", "Shorabak")],
        points: &[
            CrossingPoint { id: "AFG-SPIN-BOLDAK-BCP", name: "Spin Boldak border crossing (opposite Chaman)", section: "AFG-KDH-SPIN-BOLDAK", kind: Official, lat: 30.960, lon: 66.420, agency: "AFG-BORDER-POLICE", weight: 0.55 },
            CrossingPoint { id: "AFG-SPIN-BOLDAK-GREEN", name: "Spin Boldak green border", section: "AFG-KDH-SPIN-BOLDAK", kind: GreenBorder, lat: 30.900, lon: 66.300, agency: "AFG-BORDER-POLICE", weight: 0.30 },
            CrossingPoint { id: "AFG-SHORABAK-GREEN", name: "Shorabak desert", section: "AFG-KDH-SHORABAK", kind: GreenBorder, lat: 30.450, lon: 65.900, agency: "AFG-BORDER-POLICE", weight: 0.15 },
            CrossingPoint { id: "AFG-REGISTAN-TRACK", name: "Registan desert track", section: "AFG-KDH-SHORABAK", kind: GreenBorder, lat: 30.100, lon: 65.600, agency: "AFG-BORDER-POLICE", weight: 0.0 },
        ],
        modus_operandi: &["mixed in with cross-border traders", "on foot through the desert", "hidden in a lorry"],
        hazard: "died of heat in the Registan desert",
    },
    // Iran to Turkey over the Van mountains: snowbound in winter, busiest in late summer.
    Route {
        id: "IRN-TUR-VAN", from: "IRN", to: "TUR", reporting_country: "TUR", direction: Entry,
        base_daily: 130.0, group_mean: 9.0, seasonal_amplitude: 0.25, family_share: 0.15,
        nationality_mix: &[("AFG", 0.62), ("PAK", 0.15), ("IRN", 0.10), ("BGD", 0.05), ("SYR", 0.03), ("IRQ", 0.03), ("TKM", 0.02)],
        sections: &[
            section("TUR-VAN-OZALP", "Özalp"), section("TUR-VAN-SARAY", "Saray"), section("TUR-VAN-BASKALE", "Başkale"),
            section("TUR-VAN-CALDIRAN", "Çaldıran"), section("TUR-HAK-YUKSEKOVA", "Yüksekova (Hakkari)"),
        ],
        points: &[
            CrossingPoint { id: "TUR-KAPIKOY-BCP", name: "Kapıköy border gate", section: "TUR-VAN-SARAY", kind: Official, lat: 38.475, lon: 44.375, agency: "TUR-EGM", weight: 0.12 },
            CrossingPoint { id: "TUR-OZALP-GREEN", name: "Özalp border villages", section: "TUR-VAN-OZALP", kind: GreenBorder, lat: 38.680, lon: 44.250, agency: "TUR-JANDARMA", weight: 0.30 },
            CrossingPoint { id: "TUR-SARAY-GREEN", name: "Saray mountain passes", section: "TUR-VAN-SARAY", kind: GreenBorder, lat: 38.550, lon: 44.300, agency: "TUR-JANDARMA", weight: 0.22 },
            CrossingPoint { id: "TUR-BASKALE-GREEN", name: "Başkale - Albayrak", section: "TUR-VAN-BASKALE", kind: GreenBorder, lat: 38.100, lon: 44.200, agency: "TUR-JANDARMA", weight: 0.18 },
            CrossingPoint { id: "TUR-ESENDERE-BCP", name: "Esendere border gate", section: "TUR-HAK-YUKSEKOVA", kind: Official, lat: 37.720, lon: 44.610, agency: "TUR-EGM", weight: 0.05 },
            CrossingPoint { id: "TUR-YUKSEKOVA-GREEN", name: "Yüksekova border", section: "TUR-HAK-YUKSEKOVA", kind: GreenBorder, lat: 37.600, lon: 44.450, agency: "TUR-JANDARMA", weight: 0.13 },
            CrossingPoint { id: "TUR-CALDIRAN-GREEN", name: "Çaldıran - Tendürek pass", section: "TUR-VAN-CALDIRAN", kind: GreenBorder, lat: 39.200, lon: 44.100, agency: "TUR-JANDARMA", weight: 0.0 },
        ],
        modus_operandi: &["on foot over mountain passes with a guide", "hidden in a truck trailer", "minibus from the border villages"],
        hazard: "froze to death on a mountain pass",
    },
    // Iran to Turkey at Gürbulak and below Mount Ararat.
    Route {
        id: "IRN-TUR-AGRI", from: "IRN", to: "TUR", reporting_country: "TUR", direction: Entry,
        base_daily: 65.0, group_mean: 8.0, seasonal_amplitude: 0.25, family_share: 0.15,
        nationality_mix: &[("AFG", 0.50), ("PAK", 0.20), ("IRN", 0.15), ("BGD", 0.05), ("TKM", 0.05), ("SYR", 0.05)],
        sections: &[section("TUR-AGRI-DOGUBAYAZIT", "Doğubayazıt"), section("TUR-AGRI-DIYADIN", "Diyadin")],
        points: &[
            CrossingPoint { id: "TUR-GURBULAK-BCP", name: "Gürbulak border gate", section: "TUR-AGRI-DOGUBAYAZIT", kind: Official, lat: 39.436, lon: 44.335, agency: "TUR-EGM", weight: 0.20 },
            CrossingPoint { id: "TUR-DOGUBAYAZIT-GREEN", name: "Doğubayazıt border villages", section: "TUR-AGRI-DOGUBAYAZIT", kind: GreenBorder, lat: 39.500, lon: 44.250, agency: "TUR-JANDARMA", weight: 0.55 },
            CrossingPoint { id: "TUR-ARARAT-GREEN", name: "Ağrı Dağı southern slopes", section: "TUR-AGRI-DOGUBAYAZIT", kind: GreenBorder, lat: 39.620, lon: 44.350, agency: "TUR-JANDARMA", weight: 0.25 },
            CrossingPoint { id: "TUR-DIYADIN-GREEN", name: "Diyadin mountain track", section: "TUR-AGRI-DIYADIN", kind: GreenBorder, lat: 39.300, lon: 44.150, agency: "TUR-JANDARMA", weight: 0.0 },
        ],
        modus_operandi: &["on foot over mountain passes with a guide", "hidden in a truck trailer", "taxi relay from the border villages"],
        hazard: "froze to death on the slopes of Ağrı Dağı",
    },
    // Iraqis and Syrians leaving the Kurdistan Region for Turkey at Zakho / Habur.
    Route {
        id: "IRQ-TUR-HABUR", from: "IRQ", to: "TUR", reporting_country: "IRQ", direction: Exit,
        base_daily: 35.0, group_mean: 6.0, seasonal_amplitude: 0.12, family_share: 0.25,
        nationality_mix: &[("IRQ", 0.45), ("SYR", 0.40), ("IRN", 0.05), ("AFG", 0.05), ("PAK", 0.05)],
        sections: &[section("IRQ-DHK-ZAKHO", "Zakho (Duhok)")],
        points: &[
            CrossingPoint { id: "IRQ-IBRAHIM-KHALIL-BCP", name: "Ibrahim Khalil crossing (opposite Habur)", section: "IRQ-DHK-ZAKHO", kind: Official, lat: 37.140, lon: 42.400, agency: "IRQ-BORDER-PORTS", weight: 0.35 },
            CrossingPoint { id: "IRQ-ZAKHO-GREEN", name: "Zakho mountains", section: "IRQ-DHK-ZAKHO", kind: GreenBorder, lat: 37.200, lon: 42.750, agency: "IRQ-BORDER-GUARD", weight: 0.45 },
            CrossingPoint { id: "IRQ-BATIFA-GREEN", name: "Batifa border area", section: "IRQ-DHK-ZAKHO", kind: GreenBorder, lat: 37.170, lon: 43.020, agency: "IRQ-BORDER-GUARD", weight: 0.20 },
        ],
        modus_operandi: &["on foot through the mountains with a guide", "hidden in a fuel tanker", "in a truck through the crossing"],
        hazard: "drowned crossing the Khabur river",
    },
    // Iranians and Afghans entering the Kurdistan Region from Iran, often heading to Turkey.
    Route {
        id: "IRN-IRQ-KURDISTAN", from: "IRN", to: "IRQ", reporting_country: "IRQ", direction: Entry,
        base_daily: 28.0, group_mean: 4.0, seasonal_amplitude: 0.15, family_share: 0.15,
        nationality_mix: &[("IRN", 0.70), ("AFG", 0.20), ("PAK", 0.10)],
        sections: &[section("IRQ-ERB-HAJI-OMARAN", "Haji Omaran (Erbil)"), section("IRQ-SUL-PENJWEN", "Penjwen (Sulaymaniyah)")],
        points: &[
            CrossingPoint { id: "IRQ-HAJI-OMARAN-BCP", name: "Haji Omaran crossing", section: "IRQ-ERB-HAJI-OMARAN", kind: Official, lat: 36.665, lon: 45.040, agency: "IRQ-BORDER-PORTS", weight: 0.35 },
            CrossingPoint { id: "IRQ-BASHMAKH-BCP", name: "Bashmakh crossing", section: "IRQ-SUL-PENJWEN", kind: Official, lat: 35.610, lon: 45.990, agency: "IRQ-BORDER-PORTS", weight: 0.25 },
            CrossingPoint { id: "IRQ-SIDAKAN-GREEN", name: "Sidakan border mountains", section: "IRQ-ERB-HAJI-OMARAN", kind: GreenBorder, lat: 36.800, lon: 44.850, agency: "IRQ-BORDER-GUARD", weight: 0.25 },
            CrossingPoint { id: "IRQ-PENJWEN-GREEN", name: "Penjwen green border", section: "IRQ-SUL-PENJWEN", kind: GreenBorder, lat: 35.650, lon: 45.980, agency: "IRQ-BORDER-GUARD", weight: 0.15 },
            CrossingPoint { id: "IRQ-QANDIL-TRACK", name: "Qandil range track", section: "IRQ-ERB-HAJI-OMARAN", kind: GreenBorder, lat: 36.350, lon: 45.200, agency: "IRQ-BORDER-GUARD", weight: 0.0 },
        ],
        modus_operandi: &["on foot through the Zagros passes", "with forged residence papers", "in a goods truck"],
        hazard: "died in an avalanche in the Zagros passes",
    },
    // Onward from Turkey to the EU across the Meriç (Evros) and the Bulgarian land border.
    Route {
        id: "TUR-EU-EDIRNE", from: "TUR", to: "EU", reporting_country: "TUR", direction: Exit,
        base_daily: 85.0, group_mean: 7.0, seasonal_amplitude: 0.15, family_share: 0.20,
        nationality_mix: &[("AFG", 0.28), ("SYR", 0.20), ("PAK", 0.12), ("MAR", 0.10), ("IRQ", 0.08), ("IRN", 0.06), ("SOM", 0.05), ("BGD", 0.04), ("ERI", 0.04), ("TUR", 0.03)],
        sections: &[section("TUR-EDR-MERIC", "Meriç river (Evros)"), section("TUR-EDR-KAPIKULE", "Kapıkule - Lalapaşa")],
        points: &[
            CrossingPoint { id: "TUR-KAPIKULE-BCP", name: "Kapıkule border gate", section: "TUR-EDR-KAPIKULE", kind: Official, lat: 41.720, lon: 26.360, agency: "TUR-EGM", weight: 0.10 },
            CrossingPoint { id: "TUR-PAZARKULE-BCP", name: "Pazarkule border gate", section: "TUR-EDR-MERIC", kind: Official, lat: 41.645, lon: 26.485, agency: "TUR-EGM", weight: 0.05 },
            CrossingPoint { id: "TUR-MERIC-KARAAGAC", name: "Meriç banks near Karaağaç", section: "TUR-EDR-MERIC", kind: GreenBorder, lat: 41.660, lon: 26.530, agency: "TUR-JANDARMA", weight: 0.30 },
            CrossingPoint { id: "TUR-MERIC-IPSALA", name: "Meriç banks near İpsala", section: "TUR-EDR-MERIC", kind: GreenBorder, lat: 40.930, lon: 26.330, agency: "TUR-JANDARMA", weight: 0.30 },
            CrossingPoint { id: "TUR-MERIC-ENEZ", name: "Meriç delta near Enez", section: "TUR-EDR-MERIC", kind: GreenBorder, lat: 40.750, lon: 26.100, agency: "TUR-JANDARMA", weight: 0.25 },
            CrossingPoint { id: "TUR-LALAPASA-GREEN", name: "Lalapaşa land border", section: "TUR-EDR-KAPIKULE", kind: GreenBorder, lat: 41.840, lon: 26.720, agency: "TUR-JANDARMA", weight: 0.0 },
        ],
        modus_operandi: &["inflatable boat across the Meriç", "hidden in a TIR truck", "on foot across the land border"],
        hazard: "drowned crossing the Meriç",
    },
    // Bangladeshis flying out towards Iran and onward by land, stopped at exit control.
    Route {
        id: "BGD-IRN-AIR", from: "BGD", to: "IRN", reporting_country: "BGD", direction: Exit,
        base_daily: 28.0, group_mean: 1.6, seasonal_amplitude: 0.05, family_share: 0.05,
        nationality_mix: &[("BGD", 0.98), ("MMR", 0.02)],
        sections: &[
            section("BGD-DAC-HSIA", "Hazrat Shahjalal International Airport"), section("BGD-CGP-SAIA", "Shah Amanat International Airport"),
            section("BGD-ZYL-OSMANI", "Osmani International Airport"),
        ],
        points: &[
            CrossingPoint { id: "BGD-DAC-AIRPORT", name: "Dhaka airport exit control", section: "BGD-DAC-HSIA", kind: Airport, lat: 23.843, lon: 90.398, agency: "BGD-IMMIGRATION", weight: 0.80 },
            CrossingPoint { id: "BGD-CGP-AIRPORT", name: "Chattogram airport exit control", section: "BGD-CGP-SAIA", kind: Airport, lat: 22.249, lon: 91.813, agency: "BGD-IMMIGRATION", weight: 0.20 },
            CrossingPoint { id: "BGD-ZYL-AIRPORT", name: "Sylhet airport exit control", section: "BGD-ZYL-OSMANI", kind: Airport, lat: 24.963, lon: 91.867, agency: "BGD-IMMIGRATION", weight: 0.0 },
        ],
        modus_operandi: &["tourist visa to a Gulf hub, onward to Tehran", "forged employment visa", "travel agent with a fake job offer"],
        hazard: "died on the onward journey",
    },
    // Trafficking and irregular exits across the land border with India at Benapole.
    Route {
        id: "BGD-IND-BENAPOLE", from: "BGD", to: "IND", reporting_country: "BGD", direction: Exit,
        base_daily: 32.0, group_mean: 3.0, seasonal_amplitude: 0.08, family_share: 0.30,
        nationality_mix: &[("BGD", 0.95), ("MMR", 0.05)],
        sections: &[section("BGD-JSR-BENAPOLE", "Benapole (Jashore)"), section("BGD-SAT-SATKHIRA", "Satkhira")],
        points: &[
            CrossingPoint { id: "BGD-BENAPOLE-BCP", name: "Benapole land port", section: "BGD-JSR-BENAPOLE", kind: Official, lat: 23.040, lon: 88.900, agency: "BGD-BGB", weight: 0.35 },
            CrossingPoint { id: "BGD-SHARSHA-GREEN", name: "Sharsha green border", section: "BGD-JSR-BENAPOLE", kind: GreenBorder, lat: 23.100, lon: 88.880, agency: "BGD-BGB", weight: 0.35 },
            CrossingPoint { id: "BGD-SATKHIRA-GREEN", name: "Satkhira riverine border", section: "BGD-SAT-SATKHIRA", kind: GreenBorder, lat: 22.700, lon: 88.970, agency: "BGD-BGB", weight: 0.30 },
        ],
        modus_operandi: &["through a paddy-field crossing with a lineman", "across the Ichamati by boat", "promised a job across the border"],
        hazard: "drowned crossing the Ichamati",
    },
];
