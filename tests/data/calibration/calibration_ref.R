# Reference results for tests/analysis/test_reference_calibration.py (issue 19).
# Run from this directory:  Rscript calibration_ref.R   (R 4.2.2, survey 4.1-1)
# Writes sample.csv (the data, made here from a fixed seed), weights.csv (the weights of
# every weighted design, one column per case, rows in sample.csv's order) and
# reference.csv (case, statistic, variable, domain, estimate, se; "status" rows say whether
# R calibrated at all).
suppressMessages(library(survey))
options(digits = 17)
set.seed(73)  # a seed whose region x sex cross products trip np.linalg.pinv (issue 19)

# ---- the data: stratified one-stage cluster sample, unequal weights within clusters -----
strata_psus <- c(A = 9, B = 7, C = 8, D = 6)       # sampled PSUs per stratum
strata_pop  <- c(A = 60, B = 35, C = 80, D = 24)    # PSUs in the population (fpc)
rows <- list()
for (h in names(strata_psus)) {
  for (j in seq_len(strata_psus[[h]])) {
    m <- sample(60:100, 1)
    rows[[length(rows) + 1]] <- data.frame(
      stratum = h, psu = paste0(h, j), fpc = strata_pop[[h]],
      w = round(strata_pop[[h]] / strata_psus[[h]] * 1.5 * runif(m, 0.6, 1.7), 3))
  }
}
s <- do.call(rbind, rows)
n <- nrow(s)
s$region <- sample(c("East", "North", "South", "West"), n, replace = TRUE, prob = c(.2, .3, .35, .15))
s$sex <- sample(c("F", "M"), n, replace = TRUE)
s$age <- sample(c("18-29", "30-44", "45-64", "65+"), n, replace = TRUE, prob = c(.25, .3, .3, .15))
s$income <- round(exp(rnorm(n, 3.2, 0.5)) + 8 * (s$region == "North"), 2)
s$y <- round(50 + 0.6 * s$income + 6 * (s$sex == "F") + 4 * (s$age == "65+") + rnorm(n, 0, 12), 1)
s$sat <- as.integer(runif(n) < plogis(-0.5 + 0.02 * s$y - 0.6 * (s$region == "West")))
write.csv(s, "sample.csv", row.names = FALSE)

d <- svydesign(id = ~psu, strata = ~stratum, fpc = ~fpc, weights = ~w, data = s)

# ---- population totals: the sample's estimates moved by up to 12% -------------------------
ht <- function(f) coef(svytotal(f, d))
N <- round(sum(weights(d)) * 0.96)
margin <- function(f, shift) { t <- ht(f) * shift; round(t / sum(t) * N) }
region_pop <- margin(~region, c(0.92, 1.08, 1.0, 0.95))
sex_pop <- margin(~sex, c(1.04, 0.97))
age_pop <- margin(~age, c(0.9, 1.02, 1.05, 1.1))
age_pop[4] <- N - sum(age_pop[1:3]); region_pop[4] <- N - sum(region_pop[1:3]); sex_pop[2] <- N - sex_pop[1]
income_pop <- round(ht(~income) * 1.04)
pop <- c(`(Intercept)` = N, regionNorth = region_pop[[2]], regionSouth = region_pop[[3]],
         regionWest = region_pop[[4]], sexM = sex_pop[[2]], `age30-44` = age_pop[[2]],
         `age45-64` = age_pop[[3]], `age65+` = age_pop[[4]], income = income_pop[[1]])
write.csv(data.frame(column = c(rep("region", 4), rep("sex", 2), rep("age", 4), "income"),
                     level = c(sub("region", "", names(region_pop)), sub("sex", "", names(sex_pop)),
                               sub("age", "", names(age_pop)), ""),
                     total = c(region_pop, sex_pop, age_pop, income_pop)),
          "population.csv", row.names = FALSE)
f <- ~region + sex + age + income
print(pop)

res <- list()
add <- function(case, statistic, variable, domain, est, se) {
  res[[length(res) + 1]] <<- data.frame(case = case, statistic = statistic, variable = variable,
                                        domain = domain, estimate = unname(est), se = unname(se))
}
wts <- list()
summarise <- function(case, des) {
  wts[[case]] <<- if (inherits(des, "svyrep.design")) weights(des, "sampling") else weights(des)
  m <- svymean(~y, des); add(case, "mean", "y", "", coef(m), SE(m))
  t <- svytotal(~y, des); add(case, "total", "y", "", coef(t), SE(t))
  m <- svymean(~sat, des); add(case, "mean", "sat", "", coef(m), SE(m))
  b <- svyby(~y, ~region, des, svymean)
  for (i in seq_len(nrow(b))) add(case, "mean", "y", paste0("region=", b$region[i]), b$y[i], b$se[i])
  b <- svyby(~y, ~age, des, svytotal)
  for (i in seq_len(nrow(b))) add(case, "total", "y", paste0("age=", b$age[i]), b$y[i], b$se[i])
  if (!inherits(des, "svyrep.design")) {
    v <- vcov(svytotal(~y + sat, des))
    add(case, "cov_total", "y:y", "", v[1, 1], NA)
    add(case, "cov_total", "y:sat", "", v[1, 2], NA)
    add(case, "cov_total", "sat:sat", "", v[2, 2], NA)
  }
}

summarise("base", d)
# 1. linear (GREG) calibration on two categorical margins, every level given
summarise("linear_two_margins", calibrate(d, ~region + sex, pop[1:5]))
# ... and on three categorical margins and a numeric total
summarise("linear", calibrate(d, f, pop))
# 3. bounded and nonlinear calibration (converged tightly: epsilon = 1e-12)
summarise("linear_bounded", calibrate(d, f, pop, calfun = "linear", bounds = c(0.7, 1.4), epsilon = 1e-12))
summarise("raking", calibrate(d, f, pop, calfun = "raking", epsilon = 1e-12))
summarise("raking_bounded", calibrate(d, f, pop, calfun = "raking", bounds = c(0.75, 1.4), epsilon = 1e-12))
summarise("logit", calibrate(d, f, pop, calfun = "logit", bounds = c(0.7, 1.5), epsilon = 1e-12))
# R's default stopping rule (epsilon = 1e-7): the same Newton iterates stop earlier
summarise("raking_bounded_eps7", calibrate(d, f, pop, calfun = "raking", bounds = c(0.75, 1.4)))
# weights far below the totals (every ratio > 20: equal weights 1, totals tripled): R rescales the weights first and the
# bounds apply to g relative to the rescaled weights
dunw <- svydesign(id = ~psu, strata = ~stratum, data = s)
summarise("unweighted_raking_bounded", suppressWarnings(
  calibrate(dunw, ~region + sex, pop[1:5] * 3, calfun = "raking", bounds = c(0.88, 1.1), epsilon = 1e-12)))
# a replicate design (JKn built from d), calibrated in every replicate
rd <- as.svrepdesign(d, type = "JKn")
summarise("jkn_logit", calibrate(rd, f, pop, calfun = "logit", bounds = c(0.6, 1.6), epsilon = 1e-12))
summarise("jkn_linear", calibrate(rd, f, pop))

# 2. trimWeights: the trimmed mass added equally to every weight that was not trimmed
summarise("trim_upper", trimWeights(d, upper = 20))
summarise("trim_upper_strict", trimWeights(d, upper = 20, strict = TRUE))
summarise("trim_both", trimWeights(d, lower = 5, upper = 20))
summarise("trim_both_strict", trimWeights(d, lower = 5, upper = 20, strict = TRUE))
# trimming after calibration: the calibration residuals still count in the variance
summarise("linear_then_trim", trimWeights(calibrate(d, f, pop), upper = 20, strict = TRUE))

# calibration that cannot meet the totals within bounds: R stops ("Calibration failed")
# on the full sample and only warns ("Failed to converge") for a replicate. Rows
# statistic = "status": variable = "ok" or the error, domain = how many warnings.
status <- function(case, expr) {
  warned <- 0
  outcome <- tryCatch(withCallingHandlers({ force(expr); "ok" },
                        warning = function(w) { warned <<- warned + 1; invokeRestart("muffleWarning") }),
                      error = function(e) paste("error:", conditionMessage(e)))
  add(case, "status", outcome, paste(warned, "warnings"), NA, NA)
}
status("infeasible_linear", calibrate(d, f, pop, calfun = "linear", bounds = c(0.9, 1.1)))
status("infeasible_raking", calibrate(d, f, pop, calfun = "raking", bounds = c(0.9, 1.1)))
status("infeasible_logit", calibrate(d, f, pop, calfun = "logit", bounds = c(0.9, 1.1)))
status("logit_unbounded", calibrate(d, f, pop, calfun = "logit"))
status("raking_0.8_1.3", calibrate(d, f, pop, calfun = "raking", bounds = c(0.8, 1.3)))
status("jkn_raking_0.8_1.3", calibrate(rd, f, pop, calfun = "raking", bounds = c(0.8, 1.3)))

out <- do.call(rbind, res)
write.csv(out, "reference.csv", row.names = FALSE)
wts$base <- NULL
wts$jkn_linear <- NULL  # the full-sample weights of "linear"
write.csv(as.data.frame(lapply(wts, function(w) sprintf("%.13g", w)), check.names = FALSE),
          "weights.csv", row.names = FALSE, quote = FALSE)
