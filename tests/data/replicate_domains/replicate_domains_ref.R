# Reference results for tests/analysis/test_reference_replicate_domains.py (issue 19,
# causes 5 and 6). Run from this directory:  Rscript replicate_domains_ref.R
# (R 4.2.2, survey 4.1-1). Writes sample.csv (the data, made here from a fixed seed, with
# 40 bootstrap replicate weights rw1..rw40 from as.svrepdesign(type="bootstrap")) and
# reference.csv (design, domain, statistic, method, estimate, se, df, ci_low, ci_high).
#
# Designs: "jkn" = as.svrepdesign(d, type="JKn"); "boot" = svrepdesign on the columns
# rw1..rw40 (type="bootstrap", combined weights); "boot_mse" the same with mse=TRUE.
# Per domain k, R's degrees of freedom are degf(subset(D, dom == k)): the rank of the
# domain's replicate weights minus 1. Proportions: svyciprop(~yes, subset(D, dom == k),
# method=M) (what svyby(~yes, ~dom, D, svyciprop, method=M) computes for domain k), whose
# df is svyciprop's default degf(<the domain's subset>);
# "logit" refits svyglm(yes ~ 1, family=quasibinomial) in every replicate. Means:
# svyby(~y, ~dom, D, svymean) and confint(svymean(~y, subset(D, dom == k)), df=degf(...)).
suppressMessages(library(survey))
options(digits = 17)
set.seed(20261208)

psus <- c(S1 = 3, S2 = 4, S3 = 3, S4 = 4, S5 = 3)
rows <- list()
for (h in names(psus)) {
  for (j in seq_len(psus[[h]])) {
    m <- sample(4:7, 1)
    rows[[length(rows) + 1]] <- data.frame(stratum = h, psu = paste0(h, "p", j),
      w = round(20 * runif(m, 0.6, 1.6), 3))
  }
}
s <- do.call(rbind, rows)
n <- nrow(s)
s$dom <- ifelse(s$stratum %in% c("S1", "S2") & runif(n) < 0.6, "b", "a")
s$dom[s$dom == "a" & runif(n) < 0.35] <- "c"
# two respondents in PSUs of different strata
s$dom[c(which(s$psu == "S3p1")[1], which(s$psu == "S5p2")[1])] <- "t"
s$y <- round(50 + 4 * as.integer(factor(s$stratum)) + 6 * (s$dom == "b") + rnorm(n, 0, 9), 1)
s$yes <- as.integer(runif(n) < plogis(-0.2 + 0.05 * (s$y - 58)))
s$yes[s$dom == "t"] <- c(0, 1)

d <- svydesign(id = ~psu, strata = ~stratum, weights = ~w, data = s)
boot <- as.svrepdesign(d, type = "bootstrap", replicates = 40)
rw <- weights(boot, "analysis")
colnames(rw) <- paste0("rw", seq_len(ncol(rw)))
s <- cbind(s, round(rw, 6))
write.csv(s, "sample.csv", row.names = FALSE)

designs <- list(
  jkn = as.svrepdesign(svydesign(id = ~psu, strata = ~stratum, weights = ~w, data = s), type = "JKn"),
  boot = svrepdesign(data = s, repweights = "rw[0-9]+", weights = ~w, type = "bootstrap",
    combined.weights = TRUE),
  boot_mse = svrepdesign(data = s, repweights = "rw[0-9]+", weights = ~w, type = "bootstrap",
    combined.weights = TRUE, mse = TRUE))

out <- list()
add <- function(design, domain, statistic, method, estimate, se, df, ci) {
  out[[length(out) + 1]] <<- data.frame(design = design, domain = domain,
    statistic = statistic, method = method, estimate = unname(estimate), se = unname(se),
    df = df, ci_low = unname(ci[1]), ci_high = unname(ci[2]))
}
domains <- sort(unique(s$dom))
for (name in names(designs)) {
  D <- designs[[name]]
  for (method in c("logit", "beta", "mean", "xlogit")) {
    p <- svyciprop(~yes, D, method = method)
    add(name, "", "proportion", method, as.numeric(p), as.numeric(SE(p)), degf(D), attr(p, "ci"))
    # svyby(~yes, ~dom, D, svyciprop, method=method) calls svyciprop on each domain's
    # subset; called one domain at a time here because the refits of "logit" fail (R's
    # glm.fit: "NAs in V(mu)") for a domain that some replicate leaves without weight.
    for (k in seq_along(domains)) {
      sub <- subset(D, dom == domains[k])
      p <- tryCatch(suppressWarnings(svyciprop(~yes, sub, method = method)), error = function(e) NULL)
      if (is.null(p)) next
      add(name, domains[k], "proportion", method, as.numeric(p), as.numeric(SE(p)), degf(sub),
        attr(p, "ci"))
    }
  }
  m <- svymean(~y, D)
  add(name, "", "mean", "wald", coef(m), SE(m), degf(D), confint(m, df = degf(D)))
  b <- svyby(~y, ~dom, D, svymean)
  for (k in seq_along(domains)) {
    sub <- subset(D, dom == domains[k])
    m <- svymean(~y, sub)
    stopifnot(all.equal(as.numeric(SE(m)), b$se[k]))
    add(name, domains[k], "mean", "wald", coef(m), SE(m), degf(sub), confint(m, df = degf(sub)))
  }
}
res <- do.call(rbind, out)
write.csv(res, "reference.csv", row.names = FALSE)
print(res, digits = 7)
