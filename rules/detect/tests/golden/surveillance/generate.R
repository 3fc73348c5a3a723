## Golden cases for relec-detect: runs R's surveillance package on bundled data sets and
## writes what it computes, so the Rust detectors can be held to it without R in CI.
##
## Run from this directory:  Rscript generate.R
## Writes inputs/<data>.csv (t,count), expected/<case>.csv (t,observed,upperbound,alarm)
## and manifest.csv (case,input,method,flags), the flags exactly as `relec detect` takes them.

suppressPackageStartupMessages(library(surveillance))

dir.create("inputs", showWarnings = FALSE)
dir.create("expected", showWarnings = FALSE)

## ---- data --------------------------------------------------------------------------------

series <- list()
add_series <- function(name, counts) {
  counts <- as.numeric(counts)
  stopifnot(!anyNA(counts))
  series[[name]] <<- counts
  write.csv(data.frame(t = seq_along(counts), count = counts),
            file.path("inputs", paste0(name, ".csv")), row.names = FALSE, quote = FALSE)
}

data("salmonella.agona"); add_series("salmonella_agona", salmonella.agona$observed)
data("ha"); add_series("ha_berlin", rowSums(ha$observed))
data("shadar"); add_series("shadar", shadar$observed)
data("abattoir"); add_series("abattoir", observed(abattoir)[, 1])
data("measlesDE"); add_series("measles_bavaria", observed(measlesDE)[, "Bavaria"])
data("campyDE"); add_series("campy_de", campyDE$case)
data("meningo.age"); add_series("meningo_monthly", rowSums(meningo.age$observed))
data("salmNewport")
salmNewportGermany <- aggregate(salmNewport, by = "unit")
add_series("salm_newport_germany", observed(salmNewportGermany)[, 1])
## The package's own no-convergence test: all zeros but one case near the end.
zeros <- rep(0, 698); zeros[696] <- 1
add_series("zeros_one_case", zeros)

## ---- how R's control names become relec's flags -------------------------------------------

flag_names <- c(range = "range", baseline = "baseline", alpha = "alpha", minSigma = "min-sigma",
                k = "k", h = "h", trans = "trans", m = "m", b = "b", w = "w",
                reweight = "reweight", trend = "trend", powertrans = "powertrans",
                limit54 = "limit54", noPeriods = "no-periods",
                pastWeeksNotIncluded = "past-weeks-not-included",
                weightsThreshold = "weights-threshold", pThresholdTrend = "p-threshold-trend",
                thresholdMethod = "threshold-method")

as_flags <- function(control, freq = 52) {
  parts <- if (freq != 52) paste("--period", freq) else character(0)
  for (key in names(control)) {
    if (key %in% c("method", "glmWarnings", "verbose")) next
    value <- control[[key]]
    if (is.null(value)) next
    name <- flag_names[[key]]
    text <- if (key == "range") {
      stopifnot(all(diff(value) == 1))
      paste0(min(value), ":", max(value))
    } else if (is.logical(value)) {
      tolower(as.character(value))
    } else {
      paste(format(value, digits = 15), collapse = ",")
    }
    parts <- c(parts, paste0("--", name, " ", text))
  }
  paste(parts, collapse = " ")
}

manifest <- data.frame(case = character(0), input = character(0), method = character(0),
                       flags = character(0))

num <- function(x) ifelse(is.na(x), "NA", format(x, digits = 17, trim = TRUE))
flag <- function(x) ifelse(is.na(x), "NA", ifelse(x, "1", "0"))

write_case <- function(case, input, method, control, t, upperbound, alarm, freq = 52) {
  observed <- series[[input]][t]
  out <- data.frame(t = t, observed = num(observed),
                    upperbound = sapply(upperbound, num), alarm = flag(alarm))
  write.csv(out, file.path("expected", paste0(case, ".csv")), row.names = FALSE, quote = FALSE)
  manifest[nrow(manifest) + 1, ] <<- list(case, input, method, as_flags(control, freq))
}

as_sts <- function(input, freq = 52) {
  sts(observed = series[[input]], frequency = freq, start = c(2000, 1))
}
as_disprog <- function(input, freq = 52) {
  x <- series[[input]]
  suppressWarnings(create.disProg(week = seq_along(x), observed = x, state = 0 * x, freq = freq))
}

## ---- EARS C1, C2, C3 (earsC) ----------------------------------------------------------------

ears <- function(case, input, control) {
  res <- earsC(as_sts(input), control = control)
  t <- if (is.null(control$range)) {
    lag <- switch(control$method, C1 = 0, C2 = 2, C3 = 4)
    baseline <- if (is.null(control$baseline)) 7 else control$baseline
    (baseline + 1 + lag):length(series[[input]])
  } else control$range
  stopifnot(length(t) == nrow(res@upperbound))
  method <- paste0("ears-", tolower(control$method))
  write_case(case, input, method, control, t, as.vector(upperbound(res)), as.vector(alarms(res)))
}

ears("ears_c1_default_agona", "salmonella_agona", list(method = "C1"))
ears("ears_c2_default_agona", "salmonella_agona", list(method = "C2"))
ears("ears_c3_default_agona", "salmonella_agona", list(method = "C3"))
ears("ears_c1_alpha05_ha", "ha_berlin", list(method = "C1", alpha = 0.05))
ears("ears_c2_baseline10_shadar", "shadar", list(method = "C2", baseline = 10, alpha = 0.01))
ears("ears_c3_minsigma_measles", "measles_bavaria",
     list(method = "C3", baseline = 5, minSigma = 0.5))
## sd 0 over a zero baseline: C3 divides by zero and R gives NaN (NA here).
ears("ears_c3_zero_sd_measles", "measles_bavaria", list(method = "C3"))
ears("ears_c1_range_abattoir", "abattoir", list(method = "C1", range = 100:171, baseline = 12))
ears("ears_c3_range_campy", "campy_de", list(method = "C3", range = 200:300, alpha = 0.001))

## The package's published test (tests/testthat/test-earsC.R): salmNewport over Germany in
## 2011, C1, alpha 0.05; the first four upper bounds are 3.278854, 3.278854, 3.436517,
## 3.855617. And its "range is well defined" test: baseline 10, no range.
in2011 <- which(isoWeekYear(epoch(salmNewport))$ISOYear == 2011)
ears("published_earsc_salmnewport_2011", "salm_newport_germany",
     list(method = "C1", range = in2011, alpha = 0.05))
ears("published_earsc_salmnewport_baseline10", "salm_newport_germany",
     list(method = "C1", baseline = 10))

## ---- CUSUM (algo.cusum) ---------------------------------------------------------------------

cusum <- function(case, input, control) {
  res <- algo.cusum(as_disprog(input), control = control)
  write_case(case, input, "cusum", control, control$range,
             as.vector(res$upperbound), as.logical(res$alarm))
}

cusum("cusum_standard_agona", "salmonella_agona", list(range = 209:312))
cusum("cusum_standard_k_h_ha", "ha_berlin", list(range = 105:290, k = 1.5, h = 3))
cusum("cusum_anscombe_shadar", "shadar", list(range = 53:295, trans = "anscombe"))
cusum("cusum_anscombe2nd_abattoir", "abattoir", list(range = 53:171, trans = "anscombe2nd"))
cusum("cusum_rossi_agona", "salmonella_agona", list(range = 157:312, trans = "rossi", k = 0.5, h = 4))
cusum("cusum_rossi_ha", "ha_berlin", list(range = 53:290, trans = "rossi"))
cusum("cusum_none_abattoir", "abattoir", list(range = 53:171, trans = "none", k = 35, h = 40))
cusum("cusum_pearsonnegbin_campy", "campy_de",
      list(range = 261:522, trans = "pearsonNegBin", alpha = 0.05))
cusum("cusum_m_given_measles", "measles_bavaria", list(range = 20:156, m = 3, k = 0.5, h = 5))

## ---- Farrington (algo.farrington, 1996) -------------------------------------------------------

farrington <- function(case, input, control, freq = 52) {
  ## Warns where the first points have fewer than b years of reference values.
  res <- suppressWarnings(algo.farrington(as_disprog(input, freq), control = control))
  t <- if (is.null(control$range)) {
    b <- if (is.null(control$b)) 5 else control$b
    w <- if (is.null(control$w)) 3 else control$w
    (freq * b - w):length(series[[input]])
  } else control$range
  write_case(case, input, "farrington", control, t, as.vector(res$upperbound),
             as.logical(res$alarm), freq)
}

farrington("farrington_default_agona", "salmonella_agona", list())
farrington("farrington_default_shadar", "shadar", list())
farrington("farrington_b3_w2_sqrt_ha", "ha_berlin",
           list(range = 200:290, b = 3, w = 2, powertrans = "1/2"))
farrington("farrington_plain_campy", "campy_de",
           list(range = 300:522, reweight = FALSE, trend = FALSE, powertrans = "none",
                alpha = 0.01))
farrington("farrington_monthly_meningo", "meningo_monthly",
           list(range = 60:156, b = 4, w = 1), freq = 12)
farrington("farrington_limit54_newport", "salm_newport_germany",
           list(range = 300:528, b = 4, w = 4, limit54 = c(3, 2), alpha = 0.1))

## ---- Farrington-flexible (farringtonFlexible, Noufaily 2013) ---------------------------------

flexible <- function(case, input, control, freq = 52) {
  control$glmWarnings <- FALSE
  res <- suppressWarnings(farringtonFlexible(as_sts(input, freq), control = control))
  t <- if (is.null(control$range)) {
    b <- if (is.null(control$b)) 5 else control$b
    w <- if (is.null(control$w)) 3 else control$w
    (freq * b + w + 1):length(series[[input]])
  } else control$range
  stopifnot(length(t) == nrow(res@upperbound))
  write_case(case, input, "farrington-flexible", control, t, as.vector(upperbound(res)),
             as.vector(alarms(res)), freq)
}

flexible("flexible_default_agona", "salmonella_agona", list())
flexible("flexible_default_shadar", "shadar", list())
flexible("flexible_nbplugin_agona", "salmonella_agona", list(thresholdMethod = "nbPlugin"))
flexible("flexible_muan_ha", "ha_berlin", list(thresholdMethod = "muan", alpha = 0.01))
flexible("flexible_sqrt_campy", "campy_de", list(range = 300:522, powertrans = "1/2"))
flexible("flexible_none_campy", "campy_de",
         list(range = 300:522, powertrans = "none", reweight = FALSE, trend = FALSE))
## Noufaily et al. (2013)'s recommended settings: 10 periods, the last 26 weeks left out.
flexible("flexible_noufaily_muan_campy", "campy_de",
         list(range = 300:522, noPeriods = 10, pastWeeksNotIncluded = 26, w = 3,
              weightsThreshold = 2.58, pThresholdTrend = 1, thresholdMethod = "muan",
              alpha = 0.05))
flexible("flexible_noufaily_nbplugin_newport", "salm_newport_germany",
         list(range = 300:528, b = 4, noPeriods = 10, pastWeeksNotIncluded = 26,
              thresholdMethod = "nbPlugin", trend = TRUE))
flexible("flexible_periods4_delta_shadar", "shadar",
         list(range = 200:295, b = 3, w = 2, noPeriods = 4, powertrans = "none",
              limit54 = c(3, 3), pThresholdTrend = 0.1))
flexible("flexible_periods10_muan_agona", "salmonella_agona",
         list(b = 5, w = 3, noPeriods = 10, pastWeeksNotIncluded = 10,
              thresholdMethod = "muan", powertrans = "2/3", weightsThreshold = 1))
flexible("flexible_recent_weeks_ha", "ha_berlin",
         list(w = 2, pastWeeksNotIncluded = 1, trend = FALSE, limit54 = c(1, 4)))
flexible("flexible_noreweight_shadar", "shadar",
         list(reweight = FALSE, thresholdMethod = "nbPlugin", alpha = 0.1))
flexible("flexible_monthly_meningo", "meningo_monthly",
         list(b = 5, w = 2, noPeriods = 3, thresholdMethod = "muan"), freq = 12)
## The package's published no-convergence test (tests/testthat/test-farringtonFlexible.R):
## the GLM fits fail, and R gives NA there.
flexible("published_flexible_no_convergence", "zeros_one_case",
         list(noPeriods = 10, alpha = 0.01, b = 5, w = 4, weightsThreshold = 2.58,
              pastWeeksNotIncluded = 26, pThresholdTrend = 1, thresholdMethod = "nbPlugin",
              limit54 = c(4, 5), range = 697:698))

write.csv(manifest, "manifest.csv", row.names = FALSE)
cat("wrote", nrow(manifest), "cases\n")
