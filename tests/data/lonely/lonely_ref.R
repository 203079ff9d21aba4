# Reference results for tests/analysis/test_reference_lonely.py (issue 19, causes 3, 4, 7).
# Run from this directory:  Rscript lonely_ref.R   (R 4.2.2, survey 4.1-1)
# Writes sample.csv and twostage.csv (the data, made here from a fixed seed) and
# reference.csv (case, rule, domain, statistic, estimate, se, df).
#
# The design: a stratified one-stage cluster sample with two lonely strata (S2, S5: one
# PSU each). Domains: "b" has no row in a lonely stratum, "c" has rows in S2 (lonely), S4
# and one PSU of S6, "a" is everywhere. Variant "fpc" adds population PSU counts; S3 is
# then taken whole (N = n = 2: certainty, never lonely).
#
# survey 4.1-1's lonely.psu="adjust" centres a lonely PSU's total at 0; survey >= 4.2
# (2023, Rcpp variance engine arma_onestage) centres it at the mean of the PSU totals,
# sum(x) / sum(n_h) over the strata the (sub)sample has. The package implements the
# latter. For "adjust" the rows "adjust" hold that value, computed explicitly with
# survey 4.1's own svyrecvar on scores whose lonely-PSU totals are shifted by that mean
# (svyrecvar42 below; shifting changes nothing in strata with 2+ PSUs, which are centred
# at their own mean, and turns 4.1's centring at 0 into centring at the mean); the rows
# "adjust_r41" hold survey 4.1's own numbers for the record. For means the two agree
# (the scores of a mean sum to 0).
suppressMessages(library(survey))
options(digits = 17)
set.seed(20261207)

psus <- c(S1 = 3, S2 = 1, S3 = 2, S4 = 4, S5 = 1, S6 = 3)
pop <- c(S1 = 12, S2 = 6, S3 = 2, S4 = 15, S5 = 4, S6 = 9)
rows <- list()
for (h in names(psus)) {
  for (j in seq_len(psus[[h]])) {
    m <- sample(3:6, 1)
    rows[[length(rows) + 1]] <- data.frame(
      stratum = h, psu = paste0(h, "p", j), N = pop[[h]],
      w = round(pop[[h]] / psus[[h]] * 5 * runif(m, 0.6, 1.6), 3))
  }
}
s <- do.call(rbind, rows)
n <- nrow(s)
# domains: b only in S1, S3, S4; c in S2, S4 and PSU S6p2 only; a everywhere else
s$g <- "a"
pick <- function(cond, p) cond & runif(n) < p
s$g[pick(s$stratum %in% c("S1", "S3", "S4"), 0.5)] <- "b"
s$g[pick(s$stratum %in% c("S2", "S4") | s$psu == "S6p2", 0.45) & s$g == "a"] <- "c"
first <- !duplicated(s$psu)
s$g[first] <- "a"  # every PSU keeps a row of "a"
s$g[which(s$stratum == "S2")[2]] <- "c"; s$g[which(s$psu == "S6p2")[2]] <- "c"
s$y <- round(40 + 3 * as.integer(factor(s$stratum)) + 5 * (s$g == "c") + rnorm(n, 0, 8), 1)
s$yes <- as.integer(runif(n) < plogis(-0.3 + 0.04 * (s$y - 45)))
write.csv(s, "sample.csv", row.names = FALSE)
stopifnot(table(s$stratum[s$g == "c"])[["S2"]] > 0, !any(s$g[s$stratum %in% c("S2", "S5")] == "b"))

out <- list()
add <- function(case, rule, domain, statistic, estimate, se, df = NA) {
  out[[length(out) + 1]] <<- data.frame(case = case, rule = rule, domain = domain,
    statistic = statistic, estimate = unname(estimate), se = unname(se), df = df)
}

# survey >= 4.2's "adjust": lonely PSU totals centred at sum(x) / sum(n_h) (strata present)
svyrecvar42 <- function(x, design) {
  strata <- design$strata[, 1]
  nPSU <- design$fpc$sampsize[, 1]
  popsize <- if (is.null(design$fpc$popsize)) rep(Inf, length(nPSU)) else design$fpc$popsize[, 1]
  lonely <- nPSU == 1 & popsize > 1
  grand <- sum(x) / sum(nPSU[!duplicated(strata)])
  rows_in_psu <- ave(rep(1, length(x)), design$cluster[, 1], FUN = sum)
  shifted <- x - ifelse(lonely, grand / rows_in_psu, 0)
  svyrecvar(shifted, design$cluster, design$strata, design$fpc, postStrata = design$postStrata)
}
mean42 <- function(design) {
  w <- 1 / design$prob
  m <- sum(w * design$variables$y) / sum(w)
  c(m, sqrt(svyrecvar42(w * (design$variables$y - m) / sum(w), design)))
}
total42 <- function(design) {
  w <- 1 / design$prob
  c(sum(w * design$variables$y), sqrt(svyrecvar42(w * design$variables$y, design)))
}

designs <- list(
  plain = svydesign(id = ~psu, strata = ~stratum, weights = ~w, data = s),
  fpc = svydesign(id = ~psu, strata = ~stratum, weights = ~w, fpc = ~N, data = s))
domains <- sort(unique(s$g))
for (variant in names(designs)) {
  d <- designs[[variant]]
  for (rule in c("certainty", "remove", "adjust", "average")) {
    for (domain_lonely in c(FALSE, TRUE)) {
      if (domain_lonely && rule %in% c("adjust", "average")) next  # not what the package does
      options(survey.lonely.psu = rule, survey.adjust.domain.lonely = domain_lonely)
      tag <- if (domain_lonely) paste0(rule, "_domainlonely") else rule
      label <- if (rule == "adjust") "adjust_r41" else tag
      m <- svymean(~y, d); add(variant, label, "", "mean", coef(m), SE(m), degf(d))
      t <- svytotal(~y, d); add(variant, label, "", "total", coef(t), SE(t))
      bm <- suppressWarnings(svyby(~y, ~g, d, svymean))
      bt <- suppressWarnings(svyby(~y, ~g, d, svytotal))
      for (k in seq_along(domains)) {
        add(variant, label, domains[k], "mean", bm$y[k], bm$se[k])
        add(variant, label, domains[k], "total", bt$y[k], bt$se[k])
      }
      if (rule == "adjust") {
        r <- mean42(d); add(variant, "adjust", "", "mean", r[1], r[2])
        stopifnot(all.equal(r[2], as.numeric(SE(m))))
        r <- total42(d); add(variant, "adjust", "", "total", r[1], r[2])
        for (k in seq_along(domains)) {
          sub <- subset(d, g == domains[k])
          r <- mean42(sub); add(variant, "adjust", domains[k], "mean", r[1], r[2])
          stopifnot(all.equal(r[2], as.numeric(bm$se[k])))
          r <- total42(sub); add(variant, "adjust", domains[k], "total", r[1], r[2])
        }
      }
      if (domain_lonely) next
      # as.svrepdesign(type = "JKn") under the same rule (jknweights reads the option)
      for (mse in c(FALSE, TRUE)) {
        rd <- as.svrepdesign(d, type = "JKn", mse = mse)
        case <- paste0(variant, "_jkn", if (mse) "_mse" else "")
        m <- svymean(~y, rd); add(case, rule, "", "mean", coef(m), SE(m), degf(rd))
        # svytotal (unlike svymean) leaves rows of strata taken whole (fpc: S3) out of the
        # replicate totals when survey.drop.replicates is TRUE; the package (as svymean)
        # uses the replicate weights as built, i.e. svytotal on the same weights without
        # the self-representing flags. Both are stored: "total" (tested equal) and
        # "total_selfrep" (svytotal(~y, rd) itself, tested to be that computation).
        same <- svrepdesign(data = s, repweights = weights(rd, "analysis"), weights = ~w,
          type = "JKn", scale = rd$scale, rscales = rd$rscales, combined.weights = TRUE, mse = mse)
        t <- svytotal(~y, same); add(case, rule, "", "total", coef(t), SE(t), degf(rd))
        t <- svytotal(~y, rd); add(case, rule, "", "total_selfrep", coef(t), SE(t), degf(rd))
        bm <- svyby(~y, ~g, rd, svymean)
        for (k in seq_along(domains)) add(case, rule, domains[k], "mean", bm$y[k], bm$se[k])
        add(case, rule, "", "replicates", ncol(rd$repweights$weights), rd$scale)
      }
    }
  }
}
# Later stages: a two-stage design with fpc at both stages in which PSU 2 has one sampled
# SSU (of 5). R applies the rules within each PSU: "average" has no other stratum to
# average over and gives NaN; 4.1's "adjust" centres the SSU's total at 0. The package
# applies them across the stage (see docs/analysis.md, "Deliberate differences from R").
two <- data.frame(psu = rep(1:4, c(3, 1, 2, 3)))
two$ssu <- seq_len(nrow(two)); two$N1 <- 10; two$N2 <- rep(c(8, 5, 6, 7), c(3, 1, 2, 3))
two$y <- round(rnorm(nrow(two), 10, 3), 1)
write.csv(two, "twostage.csv", row.names = FALSE)
for (rule in c("certainty", "remove", "adjust", "average")) {
  options(survey.lonely.psu = rule, survey.adjust.domain.lonely = FALSE)
  d2 <- svydesign(id = ~psu + ssu, fpc = ~N1 + N2, data = two)
  t <- svytotal(~y, d2); add("twostage", if (rule == "adjust") "adjust_r41" else rule, "",
    "total", coef(t), SE(t), degf(d2))
}
res <- do.call(rbind, out)
write.csv(res, "reference.csv", row.names = FALSE)
print(res[res$domain == "" & res$statistic %in% c("mean", "total"), ], digits = 8)
