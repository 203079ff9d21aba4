# Reference numbers for tests/analysis/test_reference_poisson.py (R 4.2.2, survey 4.1-1).
# Run from this folder: Rscript poisson_ref.R   (writes the CSV files beside it)
# The data are made here: counts from a stratified one-stage cluster sample with fpc and
# unequal weights, a PSU effect (so the design matters), two rows with a missing x1.
suppressMessages(library(survey))
set.seed(19)
fmt <- function(x) sprintf("%.17g", x)
rows <- list()
for (h in 1:5) {
  for (p in seq_len(3 + h %% 3)) {
    m <- sample(6:12, 1)
    u <- rnorm(1, 0, 0.35)
    x1 <- round(rnorm(m), 3)
    x2 <- rbinom(m, 1, 0.4)
    f <- sample(c("k", "l", "m"), m, replace = TRUE)
    eta <- 0.4 + 0.25 * x1 - 0.3 * x2 + c(k = 0, l = 0.35, m = -0.2)[f] + u + 0.1 * h
    rows[[length(rows) + 1]] <- data.frame(
      stratum = paste0("h", h), psu = paste0("h", h, "p", p), N_h = 8 + 3 * h,
      pw = (8 + 3 * h) / (3 + h %% 3) * runif(m, 2, 6),
      y = rpois(m, exp(eta)), x1 = x1, x2 = x2, f = f,
      dom = sample(c("u", "v"), m, replace = TRUE, prob = c(0.8, 0.2)))
  }
}
dat <- do.call(rbind, rows)
dat$x1[c(5, 40)] <- NA
d <- svydesign(id = ~psu, strata = ~stratum, weights = ~pw, fpc = ~N_h, data = dat)
rj <- as.svrepdesign(d, type = "JKn")
jk <- weights(rj, "analysis"); colnames(jk) <- paste0("jk_", seq_len(ncol(jk)))
write.csv(cbind(dat, jk), "poisson_data.csv", row.names = FALSE, na = "")
write.csv(data.frame(column = colnames(jk), rscale = rj$rscales, scale = rj$scale),
          "poisson_replicates.csv", row.names = FALSE)

# glm run to machine precision (epsilon = 1e-300: all 60 iterations, so R warns that it
# "did not converge"): R's default stops at a relative deviance change of 1e-8, and svyglm's
# variance uses the working weights of glm's last-but-one iteration, so a default fit is
# ~1e-8 (relative) away from the fully converged fit the package computes

out <- list()
add <- function(case, m) {
  cf <- coef(m)
  out[[length(out) + 1]] <<- data.frame(case = case, term = names(cf), estimate = fmt(cf),
                                        se = fmt(SE(m)), df = m$df.residual)
}
form <- y ~ x1 + x2 + f
add("taylor_poisson", svyglm(form, d, family = poisson(), epsilon = 1e-300, maxit = 60))
add("taylor_quasipoisson", svyglm(form, d, family = quasipoisson(), epsilon = 1e-300, maxit = 60))
add("jkn_quasipoisson", svyglm(form, rj, family = quasipoisson(), epsilon = 1e-300, maxit = 60))
for (part in c("u", "v")) {
  add(paste0("taylor_quasipoisson_dom_", part),
      svyglm(y ~ x1 + x2, subset(d, dom == part), family = quasipoisson(), epsilon = 1e-300, maxit = 60))
}
# a domain of the replicate design: df.residual is degf of the subset (rank of its
# replicate weights - 1) + 1 - p
add("jkn_quasipoisson_dom_v", svyglm(y ~ x1 + x2, subset(rj, dom == "v"), family = quasipoisson(),
                                    epsilon = 1e-300, maxit = 60))
res <- do.call(rbind, out)
stopifnot(identical(res$se[res$case == "taylor_poisson"], res$se[res$case == "taylor_quasipoisson"]))
write.csv(res, "poisson_reference.csv", row.names = FALSE, quote = FALSE)
print(res)
